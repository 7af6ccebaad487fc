//! fio-buffer
