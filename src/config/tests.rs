//! The settings' parsing and validation rules.

use super::*;

fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_map(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

#[test]
fn defaults_match_the_go_service() {
    let s = settings(&[]).expect("defaults are valid");
    assert_eq!(s.rate_limit_per_sec, 100);
    // Not the Go service's: chosen by measurement (docs/PERFORMANCE.md, issue 29).
    assert_eq!(s.worker_concurrency, 192);
    assert_eq!(s.retry_scan_interval, Duration::from_secs(5));
    assert_eq!(s.retry_scan_limit, 100);
    assert_eq!(s.api_port, 8080);
    assert_eq!(s.database_display(), "localhost:5432/dispatch_engine");
    assert_eq!(s.defaulted, vec!["DATABASE_DSN", "RABBITMQ_URL", "REDIS_URL"]);
    assert!(s.providers.iter().all(|(_, p)| p.is_none()));
}

#[test]
fn libpq_key_value_dsn_is_accepted() {
    let s = settings(&[(
        "DATABASE_DSN",
        "host=db user=dispatch password=hunter2 dbname=dispatch_engine port=5433 sslmode=disable",
    )])
    .unwrap();
    assert_eq!(s.database_display(), "db:5433/dispatch_engine");
}

#[test]
fn malformed_values_name_the_variable_and_an_example() {
    // A duration's message is proven end to end by cli::a_malformed_setting_stops_start_up_with_one_clear_line.
    let err = settings(&[("RATE_LIMIT_PER_SEC", "-3")]).unwrap_err().to_string();
    assert!(err.contains("RATE_LIMIT_PER_SEC") && err.contains("\"-3\""), "{err}");
    let err = settings(&[("WEBHOOK_SITE_URL", "ftp://x")]).unwrap_err().to_string();
    assert!(err.contains("WEBHOOK_SITE_URL") && err.contains("http, https"), "{err}");
}

#[test]
fn a_bad_dsn_never_echoes_its_password() {
    let err = settings(&[("DATABASE_DSN", "host=db password=hunter2 bogus=1")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("DATABASE_DSN") && !err.contains("hunter2"), "{err}");
    let err = settings(&[("DATABASE_DSN", "postgres://u:hunter2@db:notaport/x")])
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

/// Off by default is proven end to end by prune::prune_exit_codes.
#[test]
fn retention_periods_accept_0_off_and_durations() {
    for off in ["0", "off", "OFF"] {
        assert_eq!(settings(&[("RETENTION_PERIOD", off)]).unwrap().retention_period, None);
    }
    let s = settings(&[("RETENTION_PERIOD", "30d"), ("AUDIT_RETENTION_PERIOD", "12h")]).unwrap();
    assert_eq!(s.retention_period, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(s.audit_retention_period, Some(Duration::from_secs(12 * 3_600)));
    let e = settings(&[("RETENTION_PERIOD", "thirty days")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("RETENTION_PERIOD") && e.contains("off"), "{e}");
}

#[test]
fn per_channel_rate_overrides() {
    let s = settings(&[("RATE_LIMIT_PER_SEC", "10"), ("RATE_LIMIT_SMS_PER_SEC", "3")]).unwrap();
    assert_eq!(s.rate_limit_for(Channel::Sms), 3);
    assert_eq!(s.rate_limit_for(Channel::Email), 10);
}

#[test]
fn a_cluster_url_lists_every_node_and_short_entries_inherit_the_first() {
    let nodes = rabbitmq_nodes("amqps://u:p@n1:5671/prod?heartbeat=10, n2:5673 ,n3").unwrap();
    assert_eq!(
        nodes,
        vec![
            "amqps://u:p@n1:5671/prod?heartbeat=10",
            "amqps://u:p@n2:5673/prod?heartbeat=10",
            "amqps://u:p@n3/prod?heartbeat=10",
        ]
    );
    let err = rabbitmq_nodes("amqp://u:secret@n1/%2f,http://n2").unwrap_err();
    assert!(err.contains("entry 2") && err.contains("amqp, amqps"), "{err}");
    assert!(!err.contains("secret"), "never echoes a password: {err}");
    assert!(rabbitmq_nodes("amqp://n1/%2f,n2:abc")
        .unwrap_err()
        .contains("port \"abc\""));
    let mut map = HashMap::new();
    map.insert(
        "RABBITMQ_URL".to_string(),
        "amqp://u:pw@n1:5672/%2f,n2:5672".to_string(),
    );
    let s = Settings::from_map(&map).unwrap();
    assert_eq!(
        s.rabbitmq_display(),
        "amqp://u:***@n1:5672/%2f,amqp://u:***@n2:5672/%2f"
    );
}

#[test]
fn yaml_file_layers_under_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "api_port: 9000\nworker_concurrency: 4\n").unwrap();
    let mut map = read_yaml(&path).unwrap();
    map.insert("API_PORT".into(), "9100".into());
    let s = Settings::from_map(&map).unwrap();
    assert_eq!(s.api_port, 9100);
    assert_eq!(s.worker_concurrency, 4);
    std::fs::write(&path, "api_prot: 9000\n").unwrap();
    assert!(matches!(read_yaml(&path), Err(ConfigError::UnknownKey { .. })));
}

#[test]
fn a_mistyped_log_level_is_refused_instead_of_silencing_every_log() {
    for typo in ["infoo", "verbose", "info,debugg"] {
        let err = settings(&[("LOG_LEVEL", typo)]).unwrap_err().to_string();
        assert!(
            err.contains("LOG_LEVEL") && err.contains("is not a level"),
            "{typo}: {err}"
        );
        assert!(err.contains("trace, debug, info, warn, error, off"), "{err}");
    }
    let err = settings(&[("LOG_LEVEL", "dispatchctl=loud")]).unwrap_err().to_string();
    assert!(
        err.contains("LOG_LEVEL") && err.contains("not a tracing filter"),
        "{err}"
    );
    for good in [
        "info",
        "WARN",
        "off",
        "info,dispatchctl=debug",
        "warn,dispatchctl::broker=trace",
    ] {
        let s = settings(&[("LOG_LEVEL", good)]).unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(s.log_level, good);
    }
}

#[test]
fn several_postgres_hosts_are_read_in_order_in_both_forms() {
    let hosts = |dsn: &str| {
        let t = parse_dsn(dsn).unwrap_or_else(|e| panic!("{dsn}: {e}"));
        let list: Vec<String> = t
            .hosts
            .iter()
            .map(|h| format!("{}:{}", h.get_host(), h.get_port()))
            .collect();
        (list, t.read_write, t.first().get_database().map(str::to_string))
    };
    let expected = (
        vec!["a:5432".to_string(), "b:5433".to_string()],
        true,
        Some("db".to_string()),
    );
    assert_eq!(
        hosts("host=a,b port=5432,5433 dbname=db target_session_attrs=read-write"),
        expected
    );
    assert_eq!(
        hosts("postgres://u:p@a:5432,b:5433/db?target_session_attrs=read-write"),
        expected
    );
    // Without the attribute several hosts still mean "the writable one": dispatchctl writes.
    assert_eq!(hosts("postgres://a:5432,b:5433/db"), expected);
    // One port for every host; libpq's default port where none is given.
    assert_eq!(hosts("host=a,b port=6000 dbname=db").0, vec!["a:6000", "b:6000"]);
    assert_eq!(hosts("postgres://a,b:5433/db").0, vec!["a:5432", "b:5433"]);
    // One host keeps today's behaviour unless asked.
    assert!(!hosts("postgres://a/db").1);
    assert!(hosts("host=a dbname=db target_session_attrs=primary").1);
    assert!(!hosts("postgres://a,b/db?target_session_attrs=any&sslmode=disable").1);
    let s = settings(&[("DATABASE_DSN", "postgres://u:hunter2@a:5432,b:5433/db")]).unwrap();
    assert_eq!(s.database_display(), "a:5432,b:5433/db");
}

#[test]
fn a_postgres_host_list_that_cannot_serve_is_refused_by_name() {
    for (dsn, says) in [
        ("host=a,b port=1,2,3", "2 hosts but 3 ports"),
        ("host=a,,b", "empty"),
        (
            "host=a target_session_attrs=standby",
            "cannot serve dispatchctl, which writes",
        ),
        (
            "postgres://u:hunter2@a,b/db?target_session_attrs=read-only",
            "which writes",
        ),
        ("postgres://u:hunter2@a:x,b/db", "port \"x\" is not a number"),
        (
            "host=a target_session_attrs=sometimes",
            "is not one of read-write, primary, any",
        ),
    ] {
        let err = settings(&[("DATABASE_DSN", dsn)]).unwrap_err().to_string();
        assert!(err.contains("DATABASE_DSN") && err.contains(says), "{dsn}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}

#[test]
fn the_redis_sentinel_form_names_its_sentinels_master_and_database() {
    let s = redis_sentinel("redis+sentinel://:hunter2@s1:26379,s2:26380,s3/mymaster/2")
        .expect("valid")
        .expect("the Sentinel form");
    assert_eq!(
        s.sentinels,
        vec![
            ("s1".to_string(), 26379),
            ("s2".to_string(), 26380),
            ("s3".to_string(), 26379)
        ]
    );
    assert_eq!((s.master.as_str(), s.db, s.tls), ("mymaster", 2, false));
    assert_eq!(s.master_url("10.0.0.5", 6379), "redis://:hunter2@10.0.0.5:6379/2");
    assert_eq!(
        s.sentinel_url(&s.sentinels[0]),
        "redis://s1:26379",
        "the password is the master's"
    );
    let settings = settings(&[("REDIS_URL", "rediss+sentinel://:hunter2@s1:26379/mymaster")]).unwrap();
    assert_eq!(settings.redis_display(), "sentinel s1:26379 master mymaster db 0");
    assert_eq!(redis_sentinel("redis://h:6379/0"), Ok(None));
    for (url, says) in [
        ("redis+sentinel://s1:26379", "names the master"),
        ("redis+sentinel://:hunter2@s1:x/m", "port \"x\" is not a number"),
        ("redis+sentinel://s1/m/zero", "database \"zero\" is not a number"),
    ] {
        let err = settings_err(url);
        assert!(
            err.contains("REDIS_URL") && err.contains(says) && !err.contains("hunter2"),
            "{url}: {err}"
        );
    }
}

fn settings_err(redis_url: &str) -> String {
    settings(&[("REDIS_URL", redis_url)]).unwrap_err().to_string()
}

fn endpoint(s: &Settings, channel: Channel) -> &Endpoint {
    &s.provider(channel).expect("a provider").endpoint
}

#[test]
fn each_channel_falls_back_to_the_go_services_single_webhook() {
    let s = settings(&[
        ("WEBHOOK_SITE_URL", "https://hooks.example.com/all"),
        ("WEBHOOK_SECRET", "global-secret"),
        ("SMS_PROVIDER_URL", "https://sms.example.com:8443/send"),
        ("SMS_PROVIDER_AUTH_HEADER", "Authorization: Bearer t0k"),
        ("SMS_WEBHOOK_SECRET", "sms-secret"),
        ("PUSH_PROVIDER_TIMEOUT", "3s"),
    ])
    .unwrap();
    let Endpoint::Webhook {
        url,
        auth_header,
        secret,
    } = endpoint(&s, Channel::Sms)
    else {
        panic!("SMS is a webhook");
    };
    assert_eq!(url.as_str(), "https://sms.example.com:8443/send");
    let header = auth_header.as_ref().expect("SMS has its auth header");
    assert_eq!((header.name.as_str(), header.value()), ("authorization", "Bearer t0k"));
    assert_eq!(secret.as_ref().map(|s| s.expose_secret()), Some("sms-secret"));
    let Endpoint::Webhook {
        url,
        auth_header,
        secret,
    } = endpoint(&s, Channel::Email)
    else {
        panic!("EMAIL is a webhook");
    };
    assert_eq!(url.as_str(), "https://hooks.example.com/all");
    assert!(auth_header.is_none(), "an auth header belongs to its own channel only");
    assert_eq!(secret.as_ref().map(|s| s.expose_secret()), Some("global-secret"));
    assert_eq!(s.provider(Channel::Push).unwrap().timeout, Duration::from_secs(3));
    assert_eq!(s.provider(Channel::Email).unwrap().timeout, Duration::from_secs(10));
    assert_eq!(
        s.provider(Channel::Sms).unwrap().describe(),
        "webhook sms.example.com:8443"
    );
    assert_eq!(
        s.provider(Channel::Email).unwrap().describe(),
        "webhook hooks.example.com"
    );
}

#[test]
fn a_channel_without_a_url_has_no_provider() {
    let s = settings(&[("PUSH_PROVIDER_URL", "http://push.example.com/")]).unwrap();
    assert!(s.provider(Channel::Sms).is_none() && s.provider(Channel::Email).is_none());
    assert!(s.provider(Channel::Push).is_some());
    let err = settings(&[("SMS_PROVIDER_AUTH_HEADER", "X-Key: k")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SMS_PROVIDER_AUTH_HEADER") && err.contains("has no provider"),
        "{err}"
    );
}

#[test]
fn smtp_urls_set_tls_ports_and_the_login() {
    let s = settings(&[
        (
            "EMAIL_PROVIDER_URL",
            "smtp://mailer%40example.com:p%40ss@mail.example.com?tls=required",
        ),
        ("EMAIL_FROM", "Dispatch <dispatch@example.com>"),
    ])
    .unwrap();
    let Endpoint::Smtp(smtp) = endpoint(&s, Channel::Email) else {
        panic!("EMAIL is SMTP");
    };
    assert_eq!(
        (smtp.host.as_str(), smtp.port, smtp.tls),
        ("mail.example.com", 587, SmtpTls::Required)
    );
    assert_eq!(smtp.user.as_deref(), Some("mailer@example.com"));
    assert_eq!(smtp.password.as_ref().map(|p| p.expose_secret()), Some("p@ss"));
    assert_eq!(smtp.from.email.to_string(), "dispatch@example.com");
    assert_eq!(
        s.provider(Channel::Email).unwrap().describe(),
        "smtp mail.example.com:587"
    );
    let from = ("EMAIL_FROM", "dispatch@example.com");
    for (url, port, tls) in [
        ("smtp://mx.example.com", 25, SmtpTls::Opportunistic),
        ("smtp://mx.example.com:2525", 2525, SmtpTls::Opportunistic),
        ("smtps://mx.example.com", 465, SmtpTls::Implicit),
    ] {
        let s = settings(&[("EMAIL_PROVIDER_URL", url), from]).unwrap();
        let Endpoint::Smtp(smtp) = endpoint(&s, Channel::Email) else {
            panic!("{url} is SMTP");
        };
        assert_eq!((smtp.port, smtp.tls), (port, tls), "{url}");
    }
}

#[test]
fn smtp_settings_that_cannot_work_stop_start_up_with_their_name() {
    let from = ("EMAIL_FROM", "dispatch@example.com");
    // (settings, the setting the error names, words it says)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            &[("EMAIL_PROVIDER_URL", "smtp://mx.example.com")],
            "EMAIL_FROM",
            "must be set",
        ),
        (
            &[
                ("EMAIL_PROVIDER_URL", "smtp://mx.example.com"),
                ("EMAIL_FROM", "not an address"),
            ],
            "EMAIL_FROM",
            "is not an address",
        ),
        (
            &[("SMS_PROVIDER_URL", "smtp://mx.example.com"), from],
            "SMS_PROVIDER_URL",
            "e-mail channel only",
        ),
        (
            &[("EMAIL_PROVIDER_URL", "ftp://mx.example.com"), from],
            "EMAIL_PROVIDER_URL",
            "smtp, smtps",
        ),
        (
            &[("PUSH_PROVIDER_URL", "mqtt://broker"), from],
            "PUSH_PROVIDER_URL",
            "http, https",
        ),
        (
            &[("EMAIL_PROVIDER_URL", "smtp://mx.example.com?tls=maybe"), from],
            "EMAIL_PROVIDER_URL",
            "tls=required",
        ),
        (
            &[("EMAIL_PROVIDER_URL", "smtps://mx.example.com?tls=required"), from],
            "EMAIL_PROVIDER_URL",
            "smtps://",
        ),
        (
            &[
                ("EMAIL_PROVIDER_URL", "smtp://mx.example.com"),
                ("EMAIL_PROVIDER_PASSWORD", "pw"),
                from,
            ],
            "EMAIL_PROVIDER_PASSWORD",
            "names no user",
        ),
        (
            &[
                ("EMAIL_PROVIDER_URL", "smtp://mx.example.com"),
                ("EMAIL_PROVIDER_AUTH_HEADER", "X-Key: k"),
                from,
            ],
            "EMAIL_PROVIDER_AUTH_HEADER",
            "webhooks only",
        ),
        (
            &[
                ("EMAIL_PROVIDER_URL", "smtp://mx.example.com"),
                ("EMAIL_PROVIDER_TIMEOUT", "20s"),
                from,
            ],
            "LEASE_TIMEOUT",
            "EMAIL_PROVIDER_TIMEOUT",
        ),
    ];
    for (pairs, key, words) in cases {
        let err = settings(pairs).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains(words), "{pairs:?}: {err}");
    }
}

#[test]
fn an_auth_header_is_checked_and_never_echoed() {
    let url = ("SMS_PROVIDER_URL", "https://sms.example.com/");
    for bad in [
        "Bearer s3cr3t-no-colon",
        "Bad Name: s3cr3t",
        "Authorization:   ",
        "X-Key: s3cr3t\u{1}",
    ] {
        let err = settings(&[url, ("SMS_PROVIDER_AUTH_HEADER", bad)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("SMS_PROVIDER_AUTH_HEADER"), "{bad:?}: {err}");
        assert!(!err.contains("s3cr3t"), "the value leaked: {err}");
    }
    let s = settings(&[url, ("SMS_PROVIDER_AUTH_HEADER", "X-Api-Key: s3cr3t")]).unwrap();
    assert!(!format!("{s:?}").contains("s3cr3t"), "Debug shows the header's value");
}

#[test]
fn an_auth_header_comes_from_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("header");
    std::fs::write(&path, "Authorization: Bearer from-file\n").unwrap();
    let s = settings(&[
        ("SMS_PROVIDER_URL", "https://sms.example.com/"),
        ("SMS_PROVIDER_AUTH_HEADER_FILE", path.to_str().unwrap()),
    ])
    .unwrap();
    let Endpoint::Webhook { auth_header, .. } = endpoint(&s, Channel::Sms) else {
        panic!("SMS is a webhook");
    };
    assert_eq!(auth_header.as_ref().unwrap().value(), "Bearer from-file");
}

#[test]
fn the_backlog_limit_is_off_by_default_and_its_wait_must_end_before_the_request_timeout() {
    let s = settings(&[]).expect("defaults are valid");
    assert_eq!((s.backlog_limit, s.backlog_wait), (0, Duration::from_secs(2)));
    let s = settings(&[("BACKLOG_LIMIT", "300"), ("BACKLOG_WAIT", "500ms")]).expect("valid");
    assert_eq!((s.backlog_limit, s.backlog_wait), (300, Duration::from_millis(500)));
    settings(&[("REQUEST_TIMEOUT", "300ms")]).expect("without a limit, nothing waits BACKLOG_WAIT");
    let err = settings(&[("BACKLOG_LIMIT", "300"), ("BACKLOG_WAIT", "30s")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BACKLOG_WAIT") && err.contains("REQUEST_TIMEOUT (30s)"),
        "{err}"
    );
    let err = settings(&[("BACKLOG_LIMIT", "-1")]).unwrap_err().to_string();
    assert!(err.contains("BACKLOG_LIMIT"), "{err}");
}
