//! Resource limits and machine facts, read from (and, for `RLIMIT_NOFILE`, applied to) the
//! test process itself.

use fio_sys::{KernelVersion, Limit};

#[test]
fn nofile_limit_is_raised_to_the_hard_limit() {
    let before = fio_sys::nofile_limit().unwrap();
    let capacity = fio_sys::raise_nofile_limit().unwrap();
    let after = fio_sys::nofile_limit().unwrap();
    assert_eq!(capacity, before.hard);
    assert_eq!(
        after,
        Limit {
            soft: before.hard,
            hard: before.hard
        }
    );
    // A second call changes nothing.
    assert_eq!(fio_sys::raise_nofile_limit().unwrap(), capacity);
}

#[test]
fn memlock_limit_reads() {
    let memlock = fio_sys::memlock_limit().unwrap();
    assert!(memlock.soft <= memlock.hard);
    println!("RLIMIT_MEMLOCK soft={} hard={}", memlock.soft, memlock.hard);
}

#[test]
fn core_count_is_sane() {
    let cores = fio_sys::core_count().unwrap();
    assert!((1..=65536).contains(&cores), "{cores} cores");
}

#[test]
fn host_name_matches_the_kernels() {
    let name = fio_sys::host_name().unwrap();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(name, kernel.trim_end());
}

#[test]
fn kernel_version_is_modern_enough_to_run_tests() {
    let version = fio_sys::kernel_version().unwrap();
    assert!(version >= KernelVersion::new(3, 0, 0), "{version:?}");
}

#[test]
fn page_size_is_a_power_of_two() {
    let size = fio_sys::page_size();
    assert!(size.is_power_of_two() && size >= 4096, "{size}");
}
