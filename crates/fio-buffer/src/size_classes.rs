//! [`SizeClasses`]: several [`BufferPool`]s of increasing buffer sizes, and the choice of the
//! smallest one that fits a request.

use std::sync::Arc;

use crate::{Buffer, BufferPool, Error, PoolConfig, PoolStats};

/// A set of [`BufferPool`]s of strictly increasing buffer sizes ("size classes").
///
/// [`take(min_len)`](Self::take) serves a request from the smallest class whose buffers hold
/// `min_len` bytes, which bounds the waste per buffer to the gap between two classes. A class
/// at its cap yields [`Error::Exhausted`]: there is deliberately no fallback to a larger class,
/// so that a flood of small requests cannot starve the large ones.
///
/// Cloning is cheap and shares the pools.
///
/// # Examples
///
/// ```
/// use fio_buffer::{Error, SizeClasses};
///
/// let classes = SizeClasses::from_sizes([2048, 16 * 1024, 64 * 1024])?;
/// assert_eq!(classes.take(100)?.capacity(), 2048);
/// assert_eq!(classes.take(2049)?.capacity(), 16 * 1024);
/// assert!(matches!(classes.take(1 << 20), Err(Error::TooLarge { .. })));
/// # Ok::<(), fio_buffer::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SizeClasses {
    /// The pools, sorted by strictly increasing buffer size.
    pools: Arc<[BufferPool]>,
}

impl SizeClasses {
    /// Builds one pool per configuration; the order of `configs` does not matter.
    ///
    /// # Errors
    ///
    /// - [`Error::NoSizeClasses`] if `configs` is empty.
    /// - [`Error::DuplicateSizeClass`] if two configurations share a buffer size.
    /// - Any error of [`BufferPool::new`] for an invalid configuration.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{PoolConfig, SizeClasses};
    ///
    /// let classes = SizeClasses::new([
    ///     PoolConfig::new(64 * 1024).with_max_buffers(256),
    ///     PoolConfig::new(4096),
    /// ])?;
    /// assert_eq!(classes.classes()[0].buffer_size(), 4096);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    pub fn new(configs: impl IntoIterator<Item = PoolConfig>) -> Result<Self, Error> {
        let mut configs: Vec<PoolConfig> = configs.into_iter().collect();
        if configs.is_empty() {
            return Err(Error::NoSizeClasses);
        }
        configs.sort_by_key(|config| config.buffer_size);
        if let Some(pair) = configs
            .windows(2)
            .find(|pair| pair[0].buffer_size == pair[1].buffer_size)
        {
            return Err(Error::DuplicateSizeClass {
                buffer_size: pair[0].buffer_size,
            });
        }
        let pools = configs
            .into_iter()
            .map(BufferPool::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            pools: pools.into(),
        })
    }

    /// Builds one pool per buffer size, each with [`PoolConfig::new`]'s defaults.
    ///
    /// # Errors
    ///
    /// As for [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::SizeClasses;
    ///
    /// let classes = SizeClasses::from_sizes([512, 4096])?;
    /// assert_eq!(classes.classes().len(), 2);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    pub fn from_sizes(sizes: impl IntoIterator<Item = usize>) -> Result<Self, Error> {
        Self::new(sizes.into_iter().map(PoolConfig::new))
    }

    /// Takes a buffer of at least `min_len` bytes from the smallest class that fits.
    ///
    /// # Errors
    ///
    /// - [`Error::TooLarge`] if `min_len` exceeds the largest class.
    /// - [`Error::Exhausted`] if the chosen class is at its cap.
    /// - [`Error::ArenaAlloc`] if the chosen class cannot allocate a chunk.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::SizeClasses;
    ///
    /// let classes = SizeClasses::from_sizes([512, 4096])?;
    /// assert_eq!(classes.take(0)?.capacity(), 512);
    /// assert_eq!(classes.take(4096)?.capacity(), 4096);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    pub fn take(&self, min_len: usize) -> Result<Buffer, Error> {
        match self.class_for(min_len) {
            Some(pool) => pool.take(),
            None => Err(Error::TooLarge {
                requested: min_len,
                largest: self.largest_buffer_size(),
            }),
        }
    }

    /// The smallest class whose buffers hold `min_len` bytes, or `None` if none does.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::SizeClasses;
    ///
    /// let classes = SizeClasses::from_sizes([512, 4096])?;
    /// assert_eq!(classes.class_for(513).map(|pool| pool.buffer_size()), Some(4096));
    /// assert!(classes.class_for(4097).is_none());
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[must_use]
    pub fn class_for(&self, min_len: usize) -> Option<&BufferPool> {
        let index = self
            .pools
            .partition_point(|pool| pool.buffer_size() < min_len);
        self.pools.get(index)
    }

    /// The pools, in increasing buffer size.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::SizeClasses;
    ///
    /// let classes = SizeClasses::from_sizes([4096, 512])?;
    /// let sizes: Vec<_> = classes.classes().iter().map(|pool| pool.buffer_size()).collect();
    /// assert_eq!(sizes, [512, 4096]);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[must_use]
    pub fn classes(&self) -> &[BufferPool] {
        &self.pools
    }

    /// The buffer size of the largest class: the biggest request [`take`](Self::take)
    /// serves.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::SizeClasses;
    ///
    /// assert_eq!(SizeClasses::from_sizes([512, 4096])?.largest_buffer_size(), 4096);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[must_use]
    pub fn largest_buffer_size(&self) -> usize {
        self.pools.last().map_or(0, BufferPool::buffer_size)
    }

    /// A [`PoolStats`] snapshot per class, in increasing buffer size.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::SizeClasses;
    ///
    /// let classes = SizeClasses::from_sizes([512, 4096])?;
    /// let _small = classes.take(10)?;
    /// let in_use: Vec<_> = classes.stats().iter().map(|stats| stats.in_use).collect();
    /// assert_eq!(in_use, [1, 0]);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[must_use]
    pub fn stats(&self) -> Vec<PoolStats> {
        self.pools.iter().map(BufferPool::stats).collect()
    }
}
