//! Record boundaries of split newline-delimited objects, and a reader that honours them.
//!
//! A range `start..end` owns every record that *starts* inside it. A record starts at offset 0
//! and after every `\n`. The reader of a range that does not start at 0 begins one byte early
//! (at `start - 1`) to learn whether `start` is itself a record start, skips to the first record
//! start, and reads the record that crosses `end` whole. So every record is read exactly once,
//! however long it is, with `\n` or `\r\n` endings and with or without a final newline.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

use crate::codec::Codec;
use crate::contract::Item;
use crate::error::Result;
use crate::store::{ByteRange, ByteStream, ReadOptions, Store, get_parts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Skipping,
    Emitting,
    Finishing,
    Done,
}

/// Decides which bytes of a stream read from [`RangeAligner::fetch_start`] belong to a range.
#[derive(Debug, Clone)]
pub struct RangeAligner {
    end: Option<u64>,
    pos: u64,
    prev_newline: bool,
    state: State,
}

impl RangeAligner {
    /// An aligner for `range` (`None`: the whole object, passed through).
    pub fn new(range: Option<[u64; 2]>) -> Self {
        match range {
            Some([start, end]) if start > 0 => {
                RangeAligner { end: Some(end), pos: start - 1, prev_newline: false, state: State::Skipping }
            }
            Some([_, end]) => RangeAligner { end: Some(end), pos: 0, prev_newline: true, state: State::Emitting },
            None => RangeAligner { end: None, pos: 0, prev_newline: true, state: State::Emitting },
        }
    }

    /// The offset to start reading the object from.
    pub fn fetch_start(&self) -> u64 {
        self.pos
    }

    /// True once the range's last record has been passed: stop reading.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the next bytes of the object (continuing where the last call stopped) and returns
    /// the part of them this range owns (always one contiguous piece).
    pub fn feed<'a>(&mut self, buf: &'a [u8]) -> &'a [u8] {
        let mut i = 0;
        let mut from = 0;
        loop {
            match self.state {
                State::Done => return &buf[from..i],
                State::Skipping => match memchr::memchr(b'\n', &buf[i..]) {
                    None => {
                        self.pos += (buf.len() - i) as u64;
                        return &[];
                    }
                    Some(k) => {
                        i += k + 1;
                        from = i;
                        self.pos += (k + 1) as u64;
                        self.prev_newline = true;
                        self.state = State::Emitting;
                    }
                },
                State::Emitting => {
                    let Some(end) = self.end else {
                        self.pos += (buf.len() - i) as u64;
                        return &buf[from..];
                    };
                    if self.pos >= end {
                        self.state = if self.prev_newline { State::Done } else { State::Finishing };
                        continue;
                    }
                    let n = (buf.len() - i).min((end - self.pos) as usize);
                    if n == 0 {
                        return &buf[from..i];
                    }
                    i += n;
                    self.pos += n as u64;
                    self.prev_newline = buf[i - 1] == b'\n';
                }
                State::Finishing => match memchr::memchr(b'\n', &buf[i..]) {
                    None => {
                        self.pos += (buf.len() - i) as u64;
                        return &buf[from..];
                    }
                    Some(k) => {
                        i += k + 1;
                        self.pos += (k + 1) as u64;
                        self.state = State::Done;
                        return &buf[from..i];
                    }
                },
            }
        }
    }
}

/// The bytes of a stream that a range owns, as a stream (see [`RangeAligner`]).
struct Aligned {
    inner: ByteStream,
    aligner: RangeAligner,
    finished: bool,
}

impl Stream for Aligned {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        loop {
            if self.finished || self.aligner.is_done() {
                return Poll::Ready(None);
            }
            match ready!(self.inner.poll_next_unpin(cx)) {
                None => {
                    self.finished = true;
                    return Poll::Ready(None);
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(chunk)) => {
                    let owned = self.aligner.feed(&chunk);
                    if !owned.is_empty() {
                        return Poll::Ready(Some(Ok(chunk.slice_ref(owned))));
                    }
                }
            }
        }
    }
}

/// Reads one manifest item: the whole object, or the records its byte range owns; a compressed
/// object ([`Codec`]) is decompressed as it streams unless opened with [`ItemReader::open_raw`].
///
/// Besides its own methods it is a [`tokio::io::AsyncRead`] and [`tokio::io::AsyncBufRead`], so
/// readers from the ecosystem (`BufReader::lines`, CSV and JSON readers, decoders) stack on it.
/// [`ItemReader::next_record`] and the I/O traits can be mixed: both read from one buffer.
pub struct ItemReader {
    stream: ByteStream,
    /// The unread rest of the current block.
    buf: Bytes,
    /// A record cut by a block boundary, gathered by `next_record`.
    pending: BytesMut,
    codec: Option<Codec>,
}

impl std::fmt::Debug for ItemReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemReader").field("codec", &self.codec).finish_non_exhaustive()
    }
}

impl ItemReader {
    /// Opens `item` in `store`, pinned to the version recorded in the manifest, reading as
    /// `read` says (see [`ReadOptions`]). A compressed object (by its extension, or its
    /// `Content-Encoding`) reads decompressed; a truncated or corrupt one fails the read with
    /// [`crate::Error::Decompress`] naming it.
    pub async fn open(store: &Arc<dyn Store>, item: &Item, read: ReadOptions) -> Result<ItemReader> {
        Self::open_as(store, item, read, true).await
    }

    /// Opens `item` as stored: compressed objects stay compressed.
    pub async fn open_raw(store: &Arc<dyn Store>, item: &Item, read: ReadOptions) -> Result<ItemReader> {
        Self::open_as(store, item, read, false).await
    }

    async fn open_as(store: &Arc<dyn Store>, item: &Item, read: ReadOptions, decode: bool) -> Result<ItemReader> {
        let aligner = RangeAligner::new(item.range);
        let start = aligner.fetch_start();
        let owned_end = item.range.map_or(item.size, |[_, end]| end);
        let meta = item.meta();
        let mut codec = Codec::of(&item.key, item.content_encoding.as_deref());
        let parallel = read.concurrency > 1 && owned_end.saturating_sub(start) > read.part_size;
        if decode && codec.is_none() && item.range.is_none() && parallel && store.parallel_reads() {
            // Parts do not carry the object's Content-Encoding: ask once (large objects only).
            codec = store.head(&item.key).await?.and_then(|m| m.content_encoding).and_then(|e| Codec::of("", Some(&e)));
        }
        let raw = if parallel {
            // Parallel parts up to the range's end; the record crossing it is read by one
            // more GET, sent only if the aligner asks for more.
            let parts = get_parts(store.clone(), &item.key, start, owned_end, Some(&meta), read);
            if owned_end < item.size {
                let (store, key) = (store.clone(), item.key.clone());
                let tail =
                    async move { store.get(&key, Some(ByteRange { start: owned_end, end: None }), Some(&meta)).await };
                Box::pin(parts.chain(futures_util::stream::once(tail).try_flatten()))
            } else {
                parts
            }
        } else {
            let range = item.range.map(|_| ByteRange { start, end: None });
            let (stream, encoding) = store.get_encoded(&item.key, range, Some(&meta)).await?;
            codec = codec.or_else(|| encoding.as_deref().and_then(Codec::from_content_encoding));
            stream
        };
        let aligned: ByteStream = Box::pin(Aligned { inner: raw, aligner, finished: false });
        let uri = store.location().join_display(&item.key);
        let stream = match codec.filter(|_| decode) {
            Some(codec) if item.range.is_some() => {
                return Err(crate::Error::Manifest {
                    uri: uri.clone(),
                    reason: format!(
                        "{uri} is {codec}-compressed but was planned as the byte range {:?}, which cannot be decompressed alone: re-plan the run (this batchfan never splits compressed objects)",
                        item.range.unwrap_or_default()
                    ),
                });
            }
            Some(codec) => codec.decode(aligned, uri),
            None => aligned,
        };
        Ok(ItemReader { stream, buf: Bytes::new(), pending: BytesMut::new(), codec: codec.filter(|_| decode) })
    }

    /// The codec this reader decompresses, if any.
    pub fn codec(&self) -> Option<Codec> {
        self.codec
    }

    fn poll_block(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        if !self.buf.is_empty() {
            return Poll::Ready(Ok(Some(std::mem::take(&mut self.buf))));
        }
        loop {
            match ready!(self.stream.poll_next_unpin(cx)) {
                None => return Poll::Ready(Ok(None)),
                Some(Err(e)) => return Poll::Ready(Err(e)),
                Some(Ok(b)) if b.is_empty() => {}
                Some(Ok(b)) => return Poll::Ready(Ok(Some(b))),
            }
        }
    }

    /// The next block of bytes the item owns (record-aligned at both ends of a range);
    /// `None` at the end.
    pub async fn next_bytes(&mut self) -> Result<Option<Bytes>> {
        std::future::poll_fn(|cx| self.poll_block(cx)).await
    }

    /// The next record (a line without its `\n` or `\r\n`); `None` at the end.
    pub async fn next_record(&mut self) -> Result<Option<Bytes>> {
        loop {
            let block = match self.next_bytes().await? {
                Some(block) => block,
                None if self.pending.is_empty() => return Ok(None),
                None => return Ok(Some(trim_cr(std::mem::take(&mut self.pending).freeze()))),
            };
            match memchr::memchr(b'\n', &block) {
                Some(i) => {
                    self.buf = block.slice(i + 1..);
                    let line = block.slice(..i);
                    if self.pending.is_empty() {
                        return Ok(Some(trim_cr(line)));
                    }
                    self.pending.extend_from_slice(&line);
                    return Ok(Some(trim_cr(std::mem::take(&mut self.pending).freeze())));
                }
                None => self.pending.extend_from_slice(&block),
            }
        }
    }

    /// Reads everything the item owns into memory (named apart from `AsyncReadExt::read_to_end`).
    pub async fn read_all(&mut self) -> Result<Bytes> {
        let mut out = BytesMut::new();
        while let Some(bytes) = self.next_bytes().await? {
            out.extend_from_slice(&bytes);
        }
        Ok(out.freeze())
    }

    /// Reads ahead until the first bytes arrived (or the end, or an error, kept for the next
    /// read): a prefetch that leaves the reader where it was.
    pub async fn prime(&mut self) {
        if self.buf.is_empty() {
            match self.next_bytes().await {
                Ok(Some(b)) => self.buf = b,
                Ok(None) => {}
                Err(e) => self.stream = Box::pin(futures_util::stream::once(async move { Err(e) })),
            }
        }
    }
}

fn trim_cr(mut line: Bytes) -> Bytes {
    if line.last() == Some(&b'\r') {
        line.truncate(line.len() - 1);
    }
    line
}

/// A storage error seen through `AsyncRead`: kept whole inside the `io::Error`, so a caller can
/// get it back with `io::Error::into_inner` and a downcast (see [`crate::Error::from_io`]).
fn io_error(e: crate::Error) -> std::io::Error {
    let kind = match &e {
        crate::Error::InputChanged { .. } | crate::Error::Decompress { .. } => std::io::ErrorKind::InvalidData,
        _ => std::io::ErrorKind::Other,
    };
    std::io::Error::new(kind, e)
}

impl AsyncBufRead for ItemReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        let this = self.get_mut();
        if !this.pending.is_empty() {
            // Bytes `next_record` gathered come first.
            let rest = std::mem::take(&mut this.buf);
            let mut joined = std::mem::take(&mut this.pending);
            joined.extend_from_slice(&rest);
            this.buf = joined.freeze();
        }
        if this.buf.is_empty() {
            match ready!(this.poll_block(cx)) {
                Ok(Some(b)) => this.buf = b,
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(io_error(e))),
            }
        }
        Poll::Ready(Ok(&this.buf))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        let n = amt.min(this.buf.len());
        bytes::Buf::advance(&mut this.buf, n);
    }
}

impl AsyncRead for ItemReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let available = ready!(Pin::new(&mut *this).poll_fill_buf(cx))?;
        let n = available.len().min(out.remaining());
        out.put_slice(&available[..n]);
        Pin::new(this).consume(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::split_ranges;
    use crate::store::LocalStore;
    use crate::uri::Location;
    use proptest::prelude::*;

    /// Reads `range` of `content` through an aligner, feeding `step` bytes at a time.
    fn owned(content: &[u8], range: Option<[u64; 2]>, step: usize) -> Vec<u8> {
        let mut aligner = RangeAligner::new(range);
        let mut out = Vec::new();
        for piece in content[aligner.fetch_start() as usize..].chunks(step.max(1)) {
            if aligner.is_done() {
                break;
            }
            out.extend_from_slice(aligner.feed(piece));
        }
        out
    }

    fn all_ranges(content: &[u8], split: u64, step: usize) -> Vec<Vec<u8>> {
        split_ranges(content.len() as u64, split).into_iter().map(|r| owned(content, Some(r), step)).collect()
    }

    #[test]
    fn examples() {
        let text = b"aa\nbbbbbbbb\nc\n";
        let parts = all_ranges(text, 4, 3);
        assert_eq!(parts.concat(), text);
        assert_eq!(parts[0], b"aa\nbbbbbbbb\n"); // bbbbbbbb starts in [0,4) and is read whole
        assert!(parts[1].is_empty() && parts[2].is_empty()); // [4,8) and [8,12) lie inside a record
        assert_eq!(parts[3], b"c\n"); // record "c" starts at 12
        // a record starting exactly at a range start belongs to that range
        assert_eq!(all_ranges(b"abc\ndef", 4, 1), vec![b"abc\n".to_vec(), b"def".to_vec()]);
        assert_eq!(owned(b"whole\nobject", None, 2), b"whole\nobject");
    }

    /// Reads every split of `content` through an [`ItemReader`] on a local store with `read`.
    async fn read_splits(dir: &std::path::Path, content: &[u8], split: u64, read: ReadOptions) -> Vec<Vec<u8>> {
        std::fs::write(dir.join("f.txt"), content).unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(Location::Local { path: dir.to_path_buf() }));
        let meta = store.head("f.txt").await.unwrap().unwrap();
        let mut parts = Vec::new();
        for range in split_ranges(content.len() as u64, split).into_iter().map(Some).chain([None]) {
            let mut reader = ItemReader::open(&store, &Item::from_meta(meta.clone(), range), read).await.unwrap();
            parts.push(reader.read_all().await.unwrap().to_vec());
        }
        parts
    }

    #[tokio::test]
    async fn parallel_parts_read_the_same_records() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..400)
            .flat_map(|i| format!("{}{}", "x".repeat(i % 37), if i % 3 == 0 { "\r\n" } else { "\n" }).into_bytes())
            .collect();
        let expected: Vec<Vec<u8>> = all_ranges(&content, 1000, 64).into_iter().chain([content.clone()]).collect();
        for part_size in [1, 7, 100, 999, 1000, 1001, 1 << 20] {
            for concurrency in [1, 2, 5] {
                let read = ReadOptions { part_size, concurrency };
                assert_eq!(read_splits(dir.path(), &content, 1000, read).await, expected, "{read:?}");
            }
        }
    }

    #[tokio::test]
    async fn async_read_and_buf_read_see_the_same_bytes_as_next_record() {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> =
            (0..300).flat_map(|i| format!("row {i}{}", if i % 2 == 0 { "\r\n" } else { "\n" }).into_bytes()).collect();
        std::fs::write(dir.path().join("f.txt"), &content).unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(Location::Local { path: dir.path().to_path_buf() }));
        let meta = store.head("f.txt").await.unwrap().unwrap();
        let read = ReadOptions { part_size: 64, concurrency: 3 };
        for range in split_ranges(content.len() as u64, 700).into_iter().map(Some).chain([None]) {
            let item = Item::from_meta(meta.clone(), range);
            let mut by_record = Vec::new();
            let mut reader = ItemReader::open(&store, &item, read).await.unwrap();
            while let Some(r) = reader.next_record().await.unwrap() {
                by_record.push(String::from_utf8(r.to_vec()).unwrap());
            }
            // `lines()` of tokio's AsyncBufRead strips `\n` and `\r\n` alike.
            let mut lines = ItemReader::open(&store, &item, read).await.unwrap().lines();
            let mut by_lines = Vec::new();
            while let Some(l) = lines.next_line().await.unwrap() {
                by_lines.push(l);
            }
            assert_eq!(by_lines, by_record, "{range:?}");
            // A record taken first, then the rest through AsyncRead: nothing lost or repeated.
            let mut reader = ItemReader::open(&store, &item, read).await.unwrap();
            let first = reader.next_record().await.unwrap().unwrap();
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).await.unwrap();
            let whole = ItemReader::open(&store, &item, read).await.unwrap().read_all().await.unwrap();
            let sep = if whole[first.len()] == b'\r' { 2 } else { 1 };
            assert_eq!([&first[..], &whole[first.len()..first.len() + sep], &rest[..]].concat(), whole.to_vec());
        }
    }

    #[tokio::test]
    async fn a_change_between_parts_fails_the_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "line\n".repeat(100)).unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(Location::Local { path: dir.path().to_path_buf() }));
        let meta = store.head("f.txt").await.unwrap().unwrap();
        // Two parts in flight: the third GET is sent only after the first part is taken.
        let read = ReadOptions { part_size: 100, concurrency: 2 };
        let mut reader = ItemReader::open(&store, &Item::from_meta(meta, None), read).await.unwrap();
        assert!(reader.next_bytes().await.unwrap().is_some());
        std::fs::write(&path, "changed\n".repeat(100)).unwrap();
        let mut result = Ok(None);
        for _ in 0..5 {
            result = reader.next_bytes().await;
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(crate::Error::InputChanged { .. })), "{result:?}");
    }

    proptest! {
        #[test]
        fn every_record_exactly_once(
            lines in proptest::collection::vec(proptest::collection::vec(prop_oneof![Just(b'a'), Just(b' '), Just(b'\r'), Just(b'z')], 0..40), 0..30),
            final_newline in any::<bool>(),
            crlf in any::<bool>(),
            split in 1u64..50,
            step in 1usize..20,
        ) {
            let sep: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            let mut content = lines.join(sep);
            if final_newline && !content.is_empty() {
                content.extend_from_slice(sep);
            }
            let parts = all_ranges(&content, split, step);
            // Every part is whole records, and together they are the object, in order.
            prop_assert_eq!(parts.concat(), content.clone());
            // A part followed by more records ends at a record boundary.
            for (i, part) in parts.iter().enumerate() {
                if !part.is_empty() && parts[i + 1..].iter().any(|p| !p.is_empty()) {
                    prop_assert_eq!(part.last(), Some(&b'\n'));
                }
            }
        }
    }
}
