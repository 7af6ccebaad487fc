//! fio-ring
