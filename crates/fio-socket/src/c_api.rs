//! The FastSocket C API (`Ring/FastSocket.h`) and its Rust counterparts.
//!
//! A doc-only module: it holds no items.
//!
//! | C | Rust | notes |
//! |---|---|---|
//! | `struct FastSocket` | [`Socket`](crate::Socket) | `!Send`, lives on its ring's thread |
//! | `CreateFastSocket(ring, provider, inbound, outbound, handle, message, flags, mode, limit, function, closure)` | [`Socket::new`](crate::Socket::new)`(ring, fd, `[`SocketConfig`](crate::SocketConfig)`, handler)` | provider = a [`BufferGroup`](fio_ring::BufferGroup); `message != NULL` = [`SocketConfig::with_message_mode`](crate::SocketConfig::with_message_mode); the closure is captured by the handler; `NULL` on failure = `Err` |
//! | `ReleaseFastSocket` | [`Socket::close`](crate::Socket::close) / [`Socket::abort`](crate::Socket::abort) | graceful drains and shuts down first |
//! | `HandleFastSocketEvent(socket, event, parameter)` | [`EventHandler`](crate::EventHandler)`(&mut Ring, &Socket, Event)` | called with the state unborrowed |
//! | `POLLIN`, buffered count | [`Event::Readable`](crate::Event::Readable)` { buffered }` | |
//! | `POLLOUT` | [`Event::Drained`](crate::Event::Drained) | |
//! | `POLLERR`, errno | [`Event::Error`](crate::Event::Error)` { errno }` | |
//! | `POLLHUP` | [`Event::Closed`](crate::Event::Closed)` { reason }` | [`CloseReason`](crate::CloseReason)`::{Remote, Error, Local}` |
//! | `FASTSOCKET_MODE_REGULAR` | [`Mode::Regular`](crate::Mode::Regular) | |
//! | `FASTSOCKET_MODE_ZERO_COPY` | [`Mode::ZeroCopy`](crate::Mode::ZeroCopy)` { min_len }` | only chunks of `min_len` or more |
//! | `FASTSOCKET_MODE_AUTO_CORK` | [`Mode::AutoCork`](crate::Mode::AutoCork) | `MSG_MORE` on every send of a batch but the last |
//! | `FASTSOCKET_MODE_FILE_IO` | [`Mode::FileIo`](crate::Mode::FileIo) | |
//! | `limit` | [`SocketConfig::with_limit`](crate::SocketConfig::with_limit) | chunks per gathered send (1..=1024) |
//! | `ReceiveFastSocketData(socket, data, size, flags)` | [`Socket::receive`](crate::Socket::receive)`(ring, buf, wait_all)` | `MSG_WAITALL` = `wait_all`; `-EINVAL` etc. = `Err` |
//! | `ReceiveFastSocketBuffer` | [`Socket::receive_buffer`](crate::Socket::receive_buffer) | `NULL` = `Ok(None)` |
//! | `GetFastSocketMessageHeader` | [`Socket::receive_datagram`](crate::Socket::receive_datagram) / [`Socket::receive_from`](crate::Socket::receive_from) | the sender comes with each datagram |
//! | `TransmitFastSocketData(socket, NULL, 0, data, size, flags)` | [`Socket::transmit`](crate::Socket::transmit) | copies into outbound-pool buffers |
//! | `TransmitFastSocketData(socket, address, length, ...)` | [`Socket::transmit_to`](crate::Socket::transmit_to) | message mode |
//! | `TransmitFastSocketMessage(socket, message, flags)` | [`Socket::transmit_message`](crate::Socket::transmit_message) | chunks + optional destination |
//! | `TransmitFastSocketDescriptor(socket, descriptor, buffer)` | [`Socket::transmit_chunk`](crate::Socket::transmit_chunk) | hands a pooled buffer over; raw descriptors have no safe counterpart |
//! | `-EPIPE` | [`Error::Closed`](crate::Error::Closed) / [`Error::Broken`](crate::Error::Broken) | [`Error::errno`](crate::Error::errno) gives `EPIPE` |
//! | `-ENOMEM` | [`Error::Pool`](crate::Error::Pool) | |
//! | `-EINVAL` | [`Error::InvalidArgument`](crate::Error::InvalidArgument) | |
//! | `GetFastSocketStream(socket, 0)` | [`Socket::stream`](crate::Socket::stream) → [`SocketStream`](crate::SocketStream) | `Read + Write` |
//! | `GetFastSocketStream(socket, 1)` | [`Socket::into_stream`](crate::Socket::into_stream) → [`OwnedSocketStream`](crate::OwnedSocketStream) | closes on drop |
