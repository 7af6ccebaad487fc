//! Files sent over connections (facil.io's `fio_sendfile` and `fio_write2(.is_fd)`), and the
//! writes queued behind them.
//!
//! A file is not read into memory at once: while a connection has a file to send, its writes
//! wait in an *outbox* on the connection, and the outbox is pumped into the send queue a
//! piece at a time, when the write is made and again whenever the send queue drains. So a
//! connection holds at most [`WINDOW`] pieces of a file in memory however large the file is,
//! and bytes written after the file follow it in order. Without a file the outbox stays empty
//! and writes go straight to the send queue (or the read/write hook).
//!
//! Pieces are read with `pread(2)` on the reactor thread: regular files come from the page
//! cache, as in facil.io. Both engines send the pieces like any other chunk.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use fio_buffer::{Buffer, Chunk, SharedBuffer};

use crate::conn::hook;
use crate::conn::state::{self, close_local};
use crate::engine::{CloseMode, Engine};
use crate::thread::Local;
use crate::uuid::Uuid;

/// Bytes read from a file per piece.
const PIECE: usize = 64 * 1024;

/// Pieces of a file a connection may have queued for sending at once.
const WINDOW: usize = 4;

/// A file, or part of one, to send over a connection (facil.io's `fio_write2` with `.is_fd`).
///
/// [`FileChunk::new`] takes the descriptor over and closes it once the file is sent or the
/// connection closes (facil.io's default); [`FileChunk::shared`] keeps the file open for
/// whoever else holds it (`.keep_open`). By default the whole file is sent from offset 0;
/// [`offset`](FileChunk::offset) and [`max_len`](FileChunk::max_len) select part of it. A
/// file shorter than asked ends the chunk early, at its end. A descriptor that can't seek (a
/// pipe) is read in order from where it stands, and the offset doesn't apply.
///
/// # Examples
/// ```
/// use std::io::Write;
/// let path = std::env::temp_dir().join(format!("fio-filechunk-{}", std::process::id()));
/// std::fs::File::create(&path)?.write_all(b"hello, file")?;
/// let chunk = fio_reactor::FileChunk::new(std::fs::File::open(&path)?)
///     .offset(7)
///     .max_len(4);
/// assert_eq!(chunk.remaining(), Some(4));
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FileChunk {
    file: FileSource,
    offset: u64,
    remaining: Option<u64>,
}

/// Who owns the descriptor a [`FileChunk`] reads.
enum FileSource {
    /// Closed when the chunk is done.
    Owned(File),
    /// Left open for the other holders (`keep_open`).
    Shared(Arc<File>),
}

impl FileChunk {
    /// Sends `file` and closes it afterwards.
    pub fn new(file: impl Into<OwnedFd>) -> Self {
        Self {
            file: FileSource::Owned(File::from(file.into())),
            offset: 0,
            remaining: None,
        }
    }

    /// Sends `file` and leaves it open (facil.io's `.keep_open`): the connection only drops
    /// its handle. Several connections can send the same file this way.
    pub fn shared(file: Arc<File>) -> Self {
        Self {
            file: FileSource::Shared(file),
            offset: 0,
            remaining: None,
        }
    }

    /// Starts at byte `offset` of the file (facil.io's `.offset`).
    #[must_use]
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Sends at most `len` bytes (facil.io's `.len`; 0 there, like no limit here, means to
    /// the end of the file).
    #[must_use]
    pub fn max_len(mut self, len: u64) -> Self {
        self.remaining = Some(len);
        self
    }

    /// Bytes still to send when a limit was set; `None` means up to the end of the file.
    pub fn remaining(&self) -> Option<u64> {
        self.remaining
    }

    /// Reads the next piece; `Ok(None)` once the limit or the end of the file is reached.
    fn next_piece(&mut self) -> io::Result<Option<Vec<u8>>> {
        let want = match self.remaining {
            Some(0) => return Ok(None),
            Some(left) => usize::try_from(left).map_or(PIECE, |left| left.min(PIECE)),
            None => PIECE,
        };
        let mut piece = vec![0; want];
        let file = match &self.file {
            FileSource::Owned(file) => file,
            FileSource::Shared(file) => file,
        };
        let count = loop {
            let read = match file.read_at(&mut piece, self.offset) {
                // A pipe or socket can't seek: read it in order instead.
                Err(error) if error.kind() == io::ErrorKind::NotSeekable => {
                    (&*file).read(&mut piece)
                }
                other => other,
            };
            match read {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        if count == 0 {
            return Ok(None);
        }
        piece.truncate(count);
        self.offset += count as u64;
        if let Some(left) = &mut self.remaining {
            *left -= count as u64;
        }
        Ok(Some(piece))
    }
}

impl fmt::Debug for FileChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileChunk")
            .field("offset", &self.offset)
            .field("remaining", &self.remaining)
            .field("keep_open", &matches!(self.file, FileSource::Shared(_)))
            .finish()
    }
}

/// What [`write2`](crate::write2) sends: bytes in memory or a file.
///
/// Every type a [`Chunk`] is made from converts into a `Payload`, as does a [`FileChunk`].
///
/// # Examples
/// ```
/// use fio_reactor::Payload;
/// assert!(matches!(Payload::from("static bytes"), Payload::Data(_)));
/// ```
#[derive(Debug)]
pub enum Payload {
    /// Bytes in memory, moved into the connection.
    Data(Chunk),
    /// A file, read and sent a piece at a time.
    File(FileChunk),
}

impl From<Chunk> for Payload {
    fn from(chunk: Chunk) -> Self {
        Self::Data(chunk)
    }
}

impl From<FileChunk> for Payload {
    fn from(file: FileChunk) -> Self {
        Self::File(file)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Data(bytes.into())
    }
}

impl From<Buffer> for Payload {
    fn from(buffer: Buffer) -> Self {
        Self::Data(buffer.into())
    }
}

impl From<SharedBuffer> for Payload {
    fn from(shared: SharedBuffer) -> Self {
        Self::Data(shared.into())
    }
}

impl From<&'static [u8]> for Payload {
    fn from(bytes: &'static [u8]) -> Self {
        Self::Data(bytes.into())
    }
}

impl From<&'static str> for Payload {
    fn from(text: &'static str) -> Self {
        Self::Data(text.into())
    }
}

/// A connection's writes waiting behind a file. Rare, so it is one pointer until used: an
/// idle connection's entry stays small.
#[derive(Default)]
pub(crate) struct Outbox(Option<Box<Waiting>>);

/// What an [`Outbox`] holds once used.
#[derive(Default)]
struct Waiting {
    queue: VecDeque<Payload>,
    /// A graceful close was asked for; it happens once the outbox is empty.
    close_when_empty: bool,
}

impl Outbox {
    /// Payloads waiting.
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |waiting| waiting.queue.len())
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`pump`] has anything to do: payloads wait, or a deferred close.
    pub(crate) fn needs_pump(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|waiting| !waiting.queue.is_empty() || waiting.close_when_empty)
    }

    /// Defers a graceful close until the outbox is empty; `false` when it is empty already.
    pub(crate) fn defer_close(&mut self) -> bool {
        match &mut self.0 {
            Some(waiting) if !waiting.queue.is_empty() => {
                waiting.close_when_empty = true;
                true
            }
            _ => false,
        }
    }

    /// Queues `payload` last.
    fn push_back(&mut self, payload: Payload) {
        self.0.get_or_insert_default().queue.push_back(payload);
    }

    /// Puts `payload` back first.
    fn push_front(&mut self, payload: Payload) {
        self.0.get_or_insert_default().queue.push_front(payload);
    }

    /// Takes the first payload.
    fn pop_front(&mut self) -> Option<Payload> {
        self.0
            .as_mut()
            .and_then(|waiting| waiting.queue.pop_front())
    }

    /// Takes the deferred close, if one was asked for.
    fn take_close(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|waiting| std::mem::take(&mut waiting.close_when_empty))
    }
}

/// Queues `payload` on `uuid` (owned here): straight to the send queue (or hook) unless a
/// file is being sent, then behind it. An urgent chunk always goes straight on.
///
/// # Errors
/// - `BrokenPipe` once the connection is closing; `NotFound` for an unknown uuid; an error
///   of the engine or hook.
pub(crate) fn write(local: &Local, uuid: Uuid, payload: Payload, urgent: bool) -> io::Result<()> {
    let (direct, hooked) = {
        let mut conns = local.conns.borrow_mut();
        let conn = conns.map.get_mut(&uuid).ok_or(io::ErrorKind::NotFound)?;
        if conn.closing {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let hooked = conn.hook.is_some();
        match payload {
            Payload::Data(chunk) if urgent || conn.outbox.is_empty() => (Some(chunk), hooked),
            queued => {
                // Its writes must now wait behind what the outbox holds.
                local.plain_data.forget();
                conn.outbox.push_back(queued);
                (None, hooked)
            }
        }
    };
    match direct {
        // The hook was looked up with the entry: one map lookup per plain write.
        Some(chunk) if hooked => hook::write(local, uuid, chunk, urgent),
        Some(chunk) => local.engine.borrow_mut().write(uuid, chunk, urgent),
        None => {
            // The drains move what waits into the send queue.
            state::want_drained(local, uuid);
            pump(local, uuid);
            Ok(())
        }
    }
}

/// [`write`] of a copy of `data` when this thread owns `uuid` (`None` otherwise, for the
/// caller to route), for the cases [`write_copy_plain`] leaves: its caller tries that
/// first, with the thread borrowed (it allocates nothing and runs no user code). A hook
/// gets the bytes lent to its [`write_borrowed`](crate::RwHook::write_borrowed); behind a
/// waiting outbox they queue as an owned chunk.
///
/// # Errors
/// As [`write`].
pub(crate) fn write_copy(local: &Local, uuid: Uuid, data: &[u8]) -> Option<io::Result<()>> {
    let (direct, hooked) = {
        let conns = local.conns.borrow();
        let conn = conns.map.get(&uuid)?;
        (conn.outbox.is_empty(), conn.hook.is_some())
    };
    Some(if direct && hooked {
        // The hook encodes from the borrowed bytes (or copies what it must keep).
        hook::write_borrowed(local, uuid, data)
    } else {
        write(local, uuid, Payload::Data(Chunk::Vec(data.to_vec())), false)
    })
}

/// [`write_copy`]'s common case: `uuid` owned here and closing (refused), or with no hook and
/// nothing waiting in its outbox, so the copy goes straight into the engine's send buffers
/// (from its own `on_data` without even a lookup: the owner path,
/// [`PlainData`](crate::conn::PlainData));
/// `None` for every other case (a hook, a waiting outbox, not here, the tables busy).
#[inline]
pub(crate) fn write_copy_plain(local: &Local, uuid: Uuid, data: &[u8]) -> Option<io::Result<()>> {
    if local.plain_data.is(uuid) {
        // The owner path: the entry was found plain when `on_data` began, and still is.
        let mut engine = local.engine.try_borrow_mut().ok()?;
        return Some(engine.write_copy(uuid, data));
    }
    let conns = local.conns.try_borrow().ok()?;
    let conn = conns.map.get(&uuid)?;
    if conn.closing {
        return Some(Err(io::ErrorKind::BrokenPipe.into()));
    }
    if conn.hook.is_some() || !conn.outbox.is_empty() {
        return None;
    }
    let mut engine = local.engine.try_borrow_mut().ok()?;
    Some(engine.write_copy(uuid, data))
}

/// Hands `chunk` to the hook, if there is one, else to the engine.
fn deliver(local: &Local, uuid: Uuid, chunk: Chunk, urgent: bool) -> io::Result<()> {
    if hook::has_hook(local, uuid) {
        hook::write(local, uuid, chunk, urgent)
    } else {
        local.engine.borrow_mut().write(uuid, chunk, urgent)
    }
}

/// Whether payloads still wait in `uuid`'s outbox (behind a file being sent).
pub(crate) fn is_waiting(local: &Local, uuid: Uuid) -> bool {
    local
        .conns
        .borrow()
        .map
        .get(&uuid)
        .is_some_and(|conn| !conn.outbox.is_empty())
}

/// Moves what waits in `uuid`'s outbox into its send queue: data as it is, up to [`WINDOW`]
/// pieces of a file. Finishes a deferred close once the outbox is empty; a file that can't
/// be read aborts the connection (its peer would get a truncated stream otherwise).
pub(crate) fn pump(local: &Local, uuid: Uuid) {
    let mut pieces = 0;
    loop {
        if pieces >= WINDOW || local.engine.borrow().pending(uuid) >= WINDOW {
            return;
        }
        let next = match local.conns.borrow_mut().map.get_mut(&uuid) {
            Some(conn) => conn.outbox.pop_front(),
            None => return,
        };
        let chunk = match next {
            Some(Payload::Data(chunk)) => chunk,
            Some(Payload::File(mut file)) => match file.next_piece() {
                Ok(Some(piece)) => {
                    pieces += 1;
                    put_back(local, uuid, Payload::File(file));
                    Chunk::Vec(piece)
                }
                // Done: dropping the chunk closes the file unless it is shared.
                Ok(None) => continue,
                Err(error) => {
                    log::warn!("reading a file to send on {uuid} failed: {error}; closing it");
                    close_local(local, uuid, CloseMode::Abort);
                    return;
                }
            },
            None => break,
        };
        if let Err(error) = deliver(local, uuid, chunk, false) {
            log::debug!("sending queued data on {uuid} failed: {error}");
            return;
        }
    }
    let close = local
        .conns
        .borrow_mut()
        .map
        .get_mut(&uuid)
        .is_some_and(|conn| conn.outbox.take_close());
    if close {
        close_local(local, uuid, CloseMode::Graceful);
    }
}

/// Returns a file being read to the front of the outbox.
fn put_back(local: &Local, uuid: Uuid, payload: Payload) {
    if let Some(conn) = local.conns.borrow_mut().map.get_mut(&uuid) {
        local.plain_data.forget();
        conn.outbox.push_front(payload);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn temp_file(contents: &[u8]) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!(
            "fio-outbox-{}-{}",
            std::process::id(),
            contents.len()
        ));
        File::create(&path).unwrap().write_all(contents).unwrap();
        let file = File::open(&path).unwrap();
        (path, file)
    }

    #[test]
    fn pieces_follow_the_offset_and_the_limit() {
        let contents: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let (path, file) = temp_file(&contents);
        let mut chunk = FileChunk::new(file).offset(10).max_len(150_000);
        let mut read = Vec::new();
        while let Some(piece) = chunk.next_piece().unwrap() {
            assert!(piece.len() <= PIECE);
            read.extend_from_slice(&piece);
        }
        assert_eq!(read, contents[10..150_010]);
        assert_eq!(chunk.remaining(), Some(0));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_short_file_ends_the_chunk_at_its_end() {
        let (path, file) = temp_file(b"short");
        let mut chunk = FileChunk::shared(Arc::new(file)).offset(2).max_len(100);
        assert_eq!(chunk.next_piece().unwrap().unwrap(), b"ort");
        assert!(chunk.next_piece().unwrap().is_none());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_pipe_is_read_in_order() {
        let (reader, writer) = fio_sys::pipe().unwrap();
        File::from(writer).write_all(b"piped bytes").unwrap();
        let mut chunk = FileChunk::new(reader);
        assert_eq!(chunk.next_piece().unwrap().unwrap(), b"piped bytes");
        assert!(chunk.next_piece().unwrap().is_none());
    }
}
