//! The plan of passes and what the runner is told, without running anything.

use super::private::{deprecation_in_use, parse_env};
use super::*;

fn setup() -> Setup {
    Setup {
        skip_services: false,
        private: true,
        shared_broker_sick: false,
        queue_type: None,
        rabbitmq: "4".into(),
        also: Some("3".into()),
        nextest: true,
    }
}

fn private(v: &str) -> Services {
    Services::Private { rabbitmq: v.into() }
}

#[test]
fn a_plain_run_has_three_passes_on_private_nodes() {
    let passes = plan(&setup(), &[]);
    assert_eq!(
        passes,
        [
            Pass {
                services: private("4"),
                queue_type: None,
                selection: Selection::AllButQuorumNamed
            },
            Pass {
                services: private("4"),
                queue_type: Some("quorum"),
                selection: Selection::Only(QUORUM)
            },
            Pass {
                services: private("3"),
                queue_type: None,
                selection: Selection::Only(ALSO)
            },
        ]
    );
}

#[test]
fn arguments_make_one_pass_and_an_empty_also_skips_the_other_rabbitmq() {
    let args = vec!["-E".to_string(), "test(/layers/)".to_string()];
    let passes = plan(&setup(), &args);
    assert_eq!(passes.len(), 1);
    assert_eq!(passes[0].selection, Selection::Given(args));
    let two = plan(&Setup { also: None, ..setup() }, &[]);
    assert_eq!(two.len(), 2);
    let same = plan(
        &Setup {
            also: Some("4".into()),
            ..setup()
        },
        &[],
    );
    assert_eq!(same.len(), 2, "the other RabbitMQ is the same one");
}

#[test]
fn given_services_run_every_pass_on_them() {
    let s = Setup {
        skip_services: true,
        private: false,
        ..setup()
    };
    let passes = plan(&s, &[]);
    assert_eq!(passes.len(), 2, "no private node for another RabbitMQ");
    assert!(passes.iter().all(|p| p.services == Services::Shared));
    assert_eq!(passes[0].selection, Selection::Everything);
    let sick = plan(
        &Setup {
            private: false,
            shared_broker_sick: true,
            ..setup()
        },
        &[],
    );
    assert_eq!(sick[0].services, private("4"));
    let shared = plan(
        &Setup {
            private: false,
            ..setup()
        },
        &[],
    );
    assert_eq!(shared[0].services, Services::Shared);
    assert_eq!(
        shared[1].services,
        private("4"),
        "quorum queues never on the shared broker"
    );
}

#[test]
fn a_queue_type_given_makes_one_pass_of_everything_when_quorum() {
    let passes = plan(
        &Setup {
            queue_type: Some("quorum".into()),
            ..setup()
        },
        &[],
    );
    assert_eq!(passes.len(), 1);
    assert_eq!(passes[0].selection, Selection::Everything);
}

#[test]
fn without_nextest_the_filters_become_test_name_prefixes() {
    let cmd = runner(Path::new("."), &Selection::Only(QUORUM), false);
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    assert_eq!(
        args[..5],
        ["test", "--workspace", "--locked", "--no-fail-fast", "--test"]
    );
    assert!(args.ends_with(&[
        "worker::".into(),
        "scanner::".into(),
        "operator::".into(),
        "broker::".into()
    ]));
    let cmd = runner(Path::new("."), &Selection::AllButQuorumNamed, true);
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    assert!(args.ends_with(&["-E".into(), NOT_QUORUM.into()]), "{args:?}");
}

#[test]
fn services_env_and_deprecation_lines_are_read_as_the_script_wrote_them() {
    let env = parse_env("CHAOS_RUN='/tmp/x'\nCHAOS_PG_PORT=1234\nCHAOS_SENTINEL_PORTS='1 2 3'\n");
    assert_eq!(env["CHAOS_RUN"], "/tmp/x");
    assert_eq!(env["CHAOS_PG_PORT"], "1234");
    assert_eq!(env["CHAOS_SENTINEL_PORTS"], "1 2 3");
    assert!(deprecation_in_use(
        "[warning] Deprecated feature `transient_nonexcl_queues` used"
    ));
    assert!(!deprecation_in_use("Deprecated features: `global_qos`: permit. false"));
    assert!(!deprecation_in_use("deprecated feature x is denied by configuration"));
}
