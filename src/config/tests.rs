//! The settings' parsing and validation rules.

use super::*;

fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_map(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

#[test]
fn defaults_match_the_go_service() {
    let s = settings(&[]).expect("defaults are valid");
    assert_eq!(s.rate_limit_per_sec, 100);
    assert_eq!(s.worker_concurrency, 64);
    assert_eq!(s.retry_scan_interval, Duration::from_secs(5));
    assert_eq!(s.retry_scan_limit, 100);
    assert_eq!(s.api_port, 8080);
    assert_eq!(s.database_display(), "localhost:5432/dispatch_engine");
    assert_eq!(s.defaulted, vec!["DATABASE_DSN", "RABBITMQ_URL", "REDIS_URL"]);
    assert!(s.webhook_site_url.is_none());
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
