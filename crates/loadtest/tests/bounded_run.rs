//! A short bounded load run against `trellis2 serve --models demo` (CPU), asserting the
//! invariants, never timings: every request answered exactly once with its own request id,
//! `overloaded` always with `Retry-After`, no unexpected status, every accepted job terminal
//! and in the job store exactly once, the server's request count equal to the clients'.
//!
//! Needs the `trellis2` binary next to this test's target directory (`cargo test --workspace`
//! builds it; alone: `cargo build -p t2-cli` first). ONNX Runtime as for the other tests.

use std::time::Duration;

use t2_loadtest::{LoadConfig, Mix, ServeOptions, ServerUnderTest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_run_loses_nothing_and_answers_each_request_once() {
    let bin = t2_loadtest::server::sibling_trellis2()
        .expect("the trellis2 binary is not built next to this test: run `cargo build -p t2-cli`");
    let dir = tempfile::tempdir().unwrap();
    let opts = ServeOptions::new(bin, dir.path().join("data"));
    let mut server = ServerUnderTest::start(&opts).await.unwrap();
    let config = LoadConfig {
        clients: 4,
        // Operations start during 25 s; a job started at the end may take a while on 2 busy
        // cores, hence the generous drain (it only bounds a stuck run).
        duration: Duration::from_secs(25),
        max_ops: 400,
        mix: Mix {
            generate: 1,
            job: 1,
            cheap: 2,
        },
        steps: 2,
        request_timeout: Duration::from_secs(240),
        drain: Duration::from_secs(240),
        seed: 7,
    };
    let report = t2_loadtest::run(server.target.clone(), config, server.setup_requests).await;
    let stopped = server.stop(Duration::from_secs(30));
    println!("{}", report.markdown());
    assert!(
        report.passed(),
        "invariants violated:\n{}",
        report.markdown()
    );
    assert!(stopped, "the server did not stop on SIGTERM");
    // The run did something of each kind (functional, not a timing bound: 25 s hold several
    // seconds-long demo generations even on 2 cores).
    for row in &report.ops {
        assert!(row.count > 0, "no {} operation ran", row.kind.name());
    }
    assert_eq!(report.lost, 0);
    assert_eq!(report.crossed, 0);
    let (counted, sent) = report.server_count.expect("the run started the server");
    assert_eq!(counted, sent);
    let store = report.store.clone().expect("the job store was read");
    assert_eq!(store.rows, report.accepted_jobs);
    assert_eq!((store.missing, store.not_terminal, store.extra), (0, 0, 0));
}
