//! Byte and newline counts per item: a handler that does almost nothing with its input, so it
//! measures the harness's read path (and checks what a child sees).

use batchfan_worker::{BoxError, Chunk};

/// The `count` handler: one `key<TAB>bytes<TAB>newlines` line per item, in item order.
pub(crate) async fn handler(chunk: Chunk) -> Result<(), BoxError> {
    let mut out = String::new();
    for item in chunk.items() {
        let mut reader = chunk.open(item).await?;
        let (mut bytes, mut newlines) = (0u64, 0u64);
        while let Some(block) = reader.next_bytes().await? {
            bytes += block.len() as u64;
            newlines += memchr::memchr_iter(b'\n', &block).count() as u64;
        }
        out.push_str(&format!("{}\t{bytes}\t{newlines}\n", item.key));
    }
    chunk.output().write(out.as_bytes()).await?;
    Ok(())
}
