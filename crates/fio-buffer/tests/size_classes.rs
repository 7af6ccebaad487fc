//! Size classes: the smallest fitting class serves each request, `TooLarge` past the largest,
//! no fallback at a class's cap, per-class stats, and validation.

use fio_buffer::{Error, PoolConfig, SizeClasses};

fn three_classes() -> SizeClasses {
    SizeClasses::new([
        PoolConfig::new(16 * 1024)
            .with_buffers_per_chunk(2)
            .with_max_buffers(2),
        PoolConfig::new(512)
            .with_buffers_per_chunk(2)
            .with_max_buffers(4),
        PoolConfig::new(4096)
            .with_buffers_per_chunk(1)
            .with_max_buffers(1),
    ])
    .unwrap()
}

#[test]
fn the_smallest_class_that_fits_serves_the_request() {
    let classes = three_classes();
    for (min_len, capacity) in [
        (0, 512),
        (1, 512),
        (512, 512),
        (513, 4096),
        (4096, 4096),
        (4097, 16 * 1024),
        (16 * 1024, 16 * 1024),
    ] {
        let buffer = classes.take(min_len).unwrap();
        assert_eq!(buffer.capacity(), capacity, "for min_len {min_len}");
        assert!(buffer.capacity() >= min_len);
    }
    assert_eq!(classes.largest_buffer_size(), 16 * 1024);
}

#[test]
fn requests_beyond_the_largest_class_are_too_large() {
    let classes = three_classes();
    assert_eq!(
        classes.take(16 * 1024 + 1).unwrap_err(),
        Error::TooLarge {
            requested: 16 * 1024 + 1,
            largest: 16 * 1024
        }
    );
    assert!(classes.class_for(usize::MAX).is_none());
}

#[test]
fn a_full_class_is_exhausted_without_falling_back() {
    let classes = three_classes();
    let held = classes.take(1000).unwrap();
    assert_eq!(
        classes.take(1000).unwrap_err(),
        Error::Exhausted {
            buffer_size: 4096,
            max_buffers: 1
        }
    );
    let address = held.as_ptr();
    drop(held);
    assert_eq!(classes.take(1000).unwrap().as_ptr(), address);
}

#[test]
fn stats_are_reported_per_class_in_size_order() {
    let classes = three_classes();
    let _small = [
        classes.take(10).unwrap(),
        classes.take(20).unwrap(),
        classes.take(30).unwrap(),
    ];
    let _large = classes.take(10_000).unwrap();
    let stats = classes.stats();
    let figures: Vec<_> = stats
        .iter()
        .map(|s| (s.buffer_size, s.capacity, s.in_use))
        .collect();
    assert_eq!(figures, [(512, 4, 3), (4096, 0, 0), (16 * 1024, 2, 1)]);
    let clone = classes.clone();
    assert!(clone.classes()[0].same_pool(&classes.classes()[0]));
}

#[test]
fn invalid_sets_are_rejected() {
    assert_eq!(
        SizeClasses::new(std::iter::empty()).unwrap_err(),
        Error::NoSizeClasses
    );
    assert_eq!(
        SizeClasses::from_sizes([4096, 512, 4096]).unwrap_err(),
        Error::DuplicateSizeClass { buffer_size: 4096 }
    );
    assert_eq!(
        SizeClasses::from_sizes([0, 512]).unwrap_err(),
        Error::ZeroSize {
            field: "buffer_size"
        }
    );
}
