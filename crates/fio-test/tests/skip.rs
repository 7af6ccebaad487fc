//! `skip` in a real test process: past the harness's capture, into `FIO_SKIP_LOG`, and a
//! failure where the policy requires the feature. The test runs itself again as a child with
//! the policy under test, since the policy is the process's environment.

use std::process::{Command, Output};

/// Set in the child: it only calls `skip` and returns.
const CHILD: &str = "FIO_TEST_SKIP_CHILD";
const TEST: &str = "skip_reports_or_fails_by_policy";

/// Runs this test binary's [`TEST`] alone as a child with `envs`, without the policy
/// variables of this run.
fn child(envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([TEST, "--exact", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove(fio_test::REQUIRE_VAR)
        .env_remove(fio_test::REQUIRE_URING_VAR)
        .env_remove(fio_test::SKIP_LOG_VAR)
        .envs(envs.iter().copied());
    command.output().unwrap()
}

#[test]
fn skip_reports_or_fails_by_policy() {
    if std::env::var_os(CHILD).is_some() {
        fio_test::skip(fio_test::Feature::Ipv6, "pretend [::1] is missing");
        return;
    }
    let log = std::env::temp_dir().join(format!("fio-test-skip-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);

    let reported = child(&[(fio_test::SKIP_LOG_VAR, log.to_str().unwrap())]);
    assert!(reported.status.success(), "{reported:?}");
    let stderr = String::from_utf8_lossy(&reported.stderr);
    let line = format!("FIO-SKIP: {TEST} : ipv6: pretend [::1] is missing");
    assert!(stderr.contains(&line), "not past the capture: {stderr}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged.trim(), line);
    let _ = std::fs::remove_file(&log);

    let required = child(&[(fio_test::REQUIRE_VAR, "uring,ipv6")]);
    assert!(
        !required.status.success(),
        "a required feature's skip must fail"
    );
    let stdout = String::from_utf8_lossy(&required.stdout);
    assert!(stdout.contains("ipv6 is required here"), "{stdout}");

    // FIO_REQUIRE_URING alone requires io_uring only.
    let other = child(&[(fio_test::REQUIRE_URING_VAR, "1")]);
    assert!(other.status.success(), "{other:?}");
}
