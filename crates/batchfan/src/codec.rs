//! Compressed objects: which ones are (by extension or `Content-Encoding`), and decoding them as
//! they stream. Compressed objects are never split: a byte range of one is not decodable alone.

use std::fmt;
use std::io;

use async_compression::tokio::bufread::{BzDecoder, GzipDecoder, XzDecoder, ZstdDecoder};
use bytes::Bytes;
use futures_util::TryStreamExt;
use tokio::io::{AsyncBufRead, AsyncRead};
use tokio_util::io::{ReaderStream, StreamReader};

use crate::error::Error;
use crate::store::ByteStream;

/// A compression format batchfan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// gzip (`.gz`, `Content-Encoding: gzip`); concatenated members are read as one stream.
    Gzip,
    /// Zstandard (`.zst`, `Content-Encoding: zstd`).
    Zstd,
    /// bzip2 (`.bz2`).
    Bzip2,
    /// xz (`.xz`).
    Xz,
    /// Snappy framing format (`.snappy`, `.sz`).
    Snappy,
}

impl Codec {
    /// Every codec, in the order messages list them.
    pub const ALL: [Codec; 5] = [Codec::Gzip, Codec::Zstd, Codec::Bzip2, Codec::Xz, Codec::Snappy];

    /// The codec a key's extension names (`data.csv.gz` → gzip), case-insensitively.
    pub fn from_key(key: &str) -> Option<Codec> {
        let ext = key.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "gz" | "gzip" => Some(Codec::Gzip),
            "zst" | "zstd" => Some(Codec::Zstd),
            "bz2" => Some(Codec::Bzip2),
            "xz" => Some(Codec::Xz),
            "snappy" | "sz" => Some(Codec::Snappy),
            _ => None,
        }
    }

    /// The codec an HTTP `Content-Encoding` names (`identity` and unknown names: none).
    pub fn from_content_encoding(value: &str) -> Option<Codec> {
        // A list such as "gzip, identity" applies in order; the first coding is the outer one.
        let first = value.split(',').map(str::trim).find(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))?;
        match first.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Codec::Gzip),
            "zstd" => Some(Codec::Zstd),
            "bzip2" | "x-bzip2" => Some(Codec::Bzip2),
            "xz" | "x-xz" => Some(Codec::Xz),
            "snappy" | "x-snappy-framed" => Some(Codec::Snappy),
            _ => None,
        }
    }

    /// The codec of an object: its `Content-Encoding` first, then its key's extension.
    pub fn of(key: &str, content_encoding: Option<&str>) -> Option<Codec> {
        content_encoding.and_then(Codec::from_content_encoding).or_else(|| Codec::from_key(key))
    }

    /// The usual file extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
            Codec::Zstd => ".zst",
            Codec::Bzip2 => ".bz2",
            Codec::Xz => ".xz",
            Codec::Snappy => ".snappy",
        }
    }

    /// Decodes `raw` (the stored bytes of `uri`) as it streams. A decoding failure (corrupt or
    /// truncated data) is [`Error::Decompress`] naming `uri`; errors of `raw` itself (a changed
    /// input, a storage failure) come through unchanged.
    pub fn decode(self, raw: ByteStream, uri: String) -> ByteStream {
        let reader = StreamReader::new(raw.map_err(io::Error::other));
        let decoded: IoStream = match self {
            Codec::Gzip => {
                let mut d = GzipDecoder::new(reader);
                d.multiple_members(true);
                stream_of(d)
            }
            Codec::Zstd => {
                let mut d = ZstdDecoder::new(reader);
                d.multiple_members(true);
                stream_of(d)
            }
            Codec::Bzip2 => {
                let mut d = BzDecoder::new(reader);
                d.multiple_members(true);
                stream_of(d)
            }
            Codec::Xz => {
                let mut d = XzDecoder::new(reader);
                d.multiple_members(true);
                stream_of(d)
            }
            Codec::Snappy => snappy_stream(reader),
        };
        // An error of `raw` comes back out of the decoder as it went in; any other is the codec's.
        Box::pin(decoded.map_err(move |source| match source.downcast::<Error>() {
            Ok(inner) => inner,
            Err(source) => Error::Decompress { uri: uri.clone(), codec: self.name(), source },
        }))
    }
}

impl Codec {
    /// Its name: `gzip`, `zstd`, `bzip2`, `xz`, `snappy`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::Bzip2 => "bzip2",
            Codec::Xz => "xz",
            Codec::Snappy => "snappy",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Decoded blocks, with the decoder's I/O errors (which carry errors of the raw stream inside).
type IoStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = io::Result<Bytes>> + Send>>;

/// Reads an async reader as a stream of blocks.
fn stream_of<R: AsyncRead + Send + 'static>(reader: R) -> IoStream {
    Box::pin(ReaderStream::with_capacity(reader, 64 << 10))
}

/// Snappy has no async decoder: the `snap` frame decoder runs on a blocking thread, fed through a
/// bridge, and hands back blocks through a small channel (two blocks of read-ahead).
fn snappy_stream<R: AsyncBufRead + Unpin + Send + 'static>(reader: R) -> IoStream {
    use std::io::Read;
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(2);
    let bridge = tokio_util::io::SyncIoBridge::new(reader);
    tokio::task::spawn_blocking(move || {
        let mut decoder = snap::read::FrameDecoder::new(bridge);
        loop {
            let mut buf = vec![0u8; 64 << 10];
            match decoder.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return; // the reader was dropped
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;

    #[test]
    fn codecs_by_extension_and_encoding() {
        assert_eq!(Codec::from_key("a/b.CSV.GZ"), Some(Codec::Gzip));
        assert_eq!(Codec::from_key("x.zst"), Some(Codec::Zstd));
        assert_eq!(Codec::from_key("x.snappy"), Some(Codec::Snappy));
        assert_eq!(Codec::from_key("x.gz.txt"), None);
        assert_eq!(Codec::from_key("noext"), None);
        assert_eq!(Codec::from_content_encoding("identity, gzip"), Some(Codec::Gzip));
        assert_eq!(Codec::from_content_encoding("br"), None);
        assert_eq!(Codec::of("x.txt", Some("zstd")), Some(Codec::Zstd));
        assert_eq!(Codec::of("x.gz", Some("identity")), Some(Codec::Gzip));
    }

    async fn decode_all(codec: Codec, data: Vec<u8>, step: usize) -> Result<Vec<u8>> {
        let blocks: Vec<Result<Bytes>> = data.chunks(step).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let raw: ByteStream = Box::pin(futures_util::stream::iter(blocks));
        let parts: Vec<Bytes> = codec.decode(raw, "mem://x".into()).try_collect().await?;
        Ok(parts.concat())
    }

    #[tokio::test]
    async fn every_codec_round_trips_and_a_cut_stream_is_an_error() {
        use std::io::Write;
        let text: Vec<u8> = (0..20_000).flat_map(|i| format!("line {i} of text\n").into_bytes()).collect();
        let gz = {
            let mut e = async_compression::tokio::write::GzipEncoder::new(Vec::new());
            tokio::io::AsyncWriteExt::write_all(&mut e, &text).await.unwrap();
            tokio::io::AsyncWriteExt::shutdown(&mut e).await.unwrap();
            e.into_inner()
        };
        let snappy = {
            let mut w = snap::write::FrameEncoder::new(Vec::new());
            w.write_all(&text).unwrap();
            w.into_inner().unwrap()
        };
        for (codec, data) in [(Codec::Gzip, gz), (Codec::Snappy, snappy)] {
            for step in [1usize, 7, 4096, 1 << 20] {
                if step == 1 && data.len() > 50_000 {
                    continue;
                }
                assert_eq!(decode_all(codec, data.clone(), step).await.unwrap(), text, "{codec} step {step}");
            }
            let cut = data[..data.len() / 2].to_vec();
            let err = decode_all(codec, cut, 4096).await.unwrap_err();
            assert!(matches!(err, Error::Decompress { codec: c, .. } if c == codec.name()), "{codec}: {err}");
            assert!(err.to_string().contains("mem://x"), "{err}");
        }
    }
}
