//! Word count over newline-delimited text, byte-wise so invalid UTF-8 is counted, not fatal.

use std::collections::HashMap;

use batchfan_worker::{BoxError, Chunk};

/// Counts ASCII-whitespace-separated words in `bytes`, carrying a word cut at the block end.
pub(crate) fn count_block(counts: &mut HashMap<Vec<u8>, u64>, carry: &mut Vec<u8>, bytes: &[u8]) {
    let mut words = bytes.split(u8::is_ascii_whitespace).peekable();
    let ends_in_space = bytes.last().is_some_and(u8::is_ascii_whitespace);
    while let Some(word) = words.next() {
        let last = words.peek().is_none();
        if last && !ends_in_space {
            carry.extend_from_slice(word);
            return;
        }
        if !carry.is_empty() {
            carry.extend_from_slice(word);
            add(counts, &std::mem::take(carry));
        } else if !word.is_empty() {
            add(counts, word);
        }
    }
}

fn add(counts: &mut HashMap<Vec<u8>, u64>, word: &[u8]) {
    match counts.get_mut(word) {
        Some(n) => *n += 1,
        None => {
            counts.insert(word.to_vec(), 1);
        }
    }
}

/// Formats counts as `word<TAB>count` lines sorted by word.
pub(crate) fn format_counts(counts: HashMap<Vec<u8>, u64>) -> Vec<u8> {
    let mut sorted: Vec<_> = counts.into_iter().collect();
    sorted.sort_unstable();
    let mut out = Vec::new();
    for (word, n) in sorted {
        out.extend_from_slice(&word);
        out.push(b'\t');
        out.extend_from_slice(n.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// The `wordcount` handler: one count table per chunk.
pub(crate) async fn handler(chunk: Chunk) -> Result<(), BoxError> {
    let mut counts = HashMap::new();
    for item in chunk.items() {
        let mut reader = chunk.open(item).await?;
        let mut carry = Vec::new();
        while let Some(bytes) = reader.next_bytes().await? {
            count_block(&mut counts, &mut carry, &bytes);
        }
        if !carry.is_empty() {
            add(&mut counts, &carry);
        }
    }
    chunk.output().write(&format_counts(counts)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(blocks: &[&[u8]]) -> Vec<(Vec<u8>, u64)> {
        let mut counts = HashMap::new();
        let mut carry = Vec::new();
        for b in blocks {
            count_block(&mut counts, &mut carry, b);
        }
        if !carry.is_empty() {
            add(&mut counts, &carry);
        }
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn words_across_blocks_and_invalid_utf8() {
        let expect = |pairs: &[(&[u8], u64)]| pairs.iter().map(|(w, n)| (w.to_vec(), *n)).collect::<Vec<_>>();
        assert_eq!(
            count(&[b"the ca", b"t the\r\n", b"\xff\xfe x"]),
            expect(&[(b"cat", 1), (b"the", 2), (b"x", 1), (b"\xff\xfe", 1)])
        );
        assert_eq!(count(&[b"  a", b"", b"b  ", b"c"]), expect(&[(b"ab", 1), (b"c", 1)]));
        assert_eq!(format_counts(count(&[b"b a b"]).into_iter().collect()), b"a\t1\nb\t2\n");
    }
}
