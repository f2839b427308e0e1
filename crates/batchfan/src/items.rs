//! [`Items`]: a plan's objects and items in compact columns, so ten million of them fit in well
//! under a gigabyte. An [`ObjectMeta`] or [`Item`] in a `Vec` costs about 190 bytes (96 to 120
//! inline, a key and an ETag allocated apart); here an item costs its key's bytes in one shared
//! buffer plus 44 bytes: key end, size, modification time, and the ETag as 16 bytes of MD5 with
//! its part count. ETags of another shape, `Content-Encoding` and byte ranges (rare) go to a
//! side table.

use std::collections::BTreeMap;

use crate::contract::Item;
use crate::store::ObjectMeta;

/// An ETag's shape: none, a plain MD5 (`"hex"`), a multipart one (`"hex-N"`), or another.
const NO_ETAG: u32 = 0;
const PLAIN_ETAG: u32 = 1;
/// `MULTIPART_BASE + N`: `"hex-N"`.
const MULTIPART_BASE: u32 = 2;
/// The ETag string is in the side table.
const OTHER_ETAG: u32 = u32::MAX;
/// No modification time.
const NO_MTIME: u64 = u64::MAX;

/// What few items have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rare {
    etag: Option<String>,
    content_encoding: Option<String>,
    range: Option<[u64; 2]>,
}

/// Objects (or items: objects and byte ranges of them) in compact columns, in the order pushed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Items {
    keys: String,
    ends: Vec<u64>,
    sizes: Vec<u64>,
    md5: Vec<[u8; 16]>,
    etag_shape: Vec<u32>,
    mtimes: Vec<u64>,
    rare: BTreeMap<usize, Rare>,
}

impl std::fmt::Debug for Items {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Items").field("len", &self.len()).field("key_bytes", &self.keys.len()).finish_non_exhaustive()
    }
}

/// `"0123…ef"` or `"0123…ef-N"` as 16 bytes and a shape; `None` for any other spelling (so what
/// comes back out is exactly what went in).
fn parse_etag(etag: &str) -> Option<([u8; 16], u32)> {
    let inner = etag.strip_prefix('"')?.strip_suffix('"')?;
    let (hex, shape) = match inner.split_once('-') {
        Some((hex, parts)) => {
            let n: u32 = parts.parse().ok()?;
            if parts != n.to_string() || n >= OTHER_ETAG - MULTIPART_BASE {
                return None;
            }
            (hex, MULTIPART_BASE + n)
        }
        None => (inner, PLAIN_ETAG),
    };
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut md5 = [0u8; 16];
    for (i, byte) in md5.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some((md5, shape))
}

impl Items {
    /// An empty store with room for `n` items.
    pub fn with_capacity(n: usize) -> Items {
        Items {
            keys: String::with_capacity(n * 24),
            ends: Vec::with_capacity(n),
            sizes: Vec::with_capacity(n),
            md5: Vec::with_capacity(n),
            etag_shape: Vec::with_capacity(n),
            mtimes: Vec::with_capacity(n),
            rare: BTreeMap::new(),
        }
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Adds an object (`range` `None`) or a byte range of one.
    pub fn push(&mut self, meta: &ObjectMeta, range: Option<[u64; 2]>) {
        let index = self.len();
        self.keys.push_str(&meta.key);
        self.ends.push(self.keys.len() as u64);
        self.sizes.push(meta.size);
        self.mtimes.push(meta.mtime_ns.unwrap_or(NO_MTIME));
        let mut rare = Rare { etag: None, content_encoding: meta.content_encoding.clone(), range };
        match meta.etag.as_deref().map(|e| (e, parse_etag(e))) {
            None => {
                self.md5.push([0; 16]);
                self.etag_shape.push(NO_ETAG);
            }
            Some((_, Some((md5, shape)))) => {
                self.md5.push(md5);
                self.etag_shape.push(shape);
            }
            Some((etag, None)) => {
                self.md5.push([0; 16]);
                self.etag_shape.push(OTHER_ETAG);
                rare.etag = Some(etag.to_string());
            }
        }
        if rare != Rare::default() {
            self.rare.insert(index, rare);
        }
    }

    /// Key of item `i` (panics past the end, as slices do).
    pub fn key(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.keys[start..self.ends[i] as usize]
    }

    /// Size of the whole object of item `i`.
    pub fn size(&self, i: usize) -> u64 {
        self.sizes[i]
    }

    /// Modification time of item `i`'s object, if its store gave one.
    pub fn mtime_ns(&self, i: usize) -> Option<u64> {
        Some(self.mtimes[i]).filter(|&t| t != NO_MTIME)
    }

    /// ETag of item `i`, as the store gave it (with its quotes).
    pub fn etag(&self, i: usize) -> Option<String> {
        let hex = || self.md5[i].iter().map(|b| format!("{b:02x}")).collect::<String>();
        match self.etag_shape[i] {
            NO_ETAG => None,
            PLAIN_ETAG => Some(format!("\"{}\"", hex())),
            OTHER_ETAG => self.rare.get(&i).and_then(|r| r.etag.clone()),
            shape => Some(format!("\"{}-{}\"", hex(), shape - MULTIPART_BASE)),
        }
    }

    /// `Content-Encoding` of item `i`'s object, when known.
    pub fn content_encoding(&self, i: usize) -> Option<&str> {
        self.rare.get(&i).and_then(|r| r.content_encoding.as_deref())
    }

    /// Sets the `Content-Encoding` of item `i`'s object.
    pub fn set_content_encoding(&mut self, i: usize, encoding: Option<String>) {
        let rare = self.rare.entry(i).or_default();
        rare.content_encoding = encoding;
        if *rare == Rare::default() {
            self.rare.remove(&i);
        }
    }

    /// Byte range of item `i`, when it is a range of a split object.
    pub fn range(&self, i: usize) -> Option<[u64; 2]> {
        self.rare.get(&i).and_then(|r| r.range)
    }

    /// Bytes item `i` reads (its range's length, or the whole object).
    pub fn bytes(&self, i: usize) -> u64 {
        self.range(i).map_or(self.sizes[i], |[start, end]| end - start)
    }

    /// Item `i`'s object as a store listed it.
    pub fn meta(&self, i: usize) -> ObjectMeta {
        ObjectMeta {
            key: self.key(i).to_string(),
            size: self.sizes[i],
            etag: self.etag(i),
            mtime_ns: self.mtime_ns(i),
            content_encoding: self.content_encoding(i).map(str::to_string),
        }
    }

    /// Item `i` as a manifest holds it.
    pub fn get(&self, i: usize) -> Item {
        Item::from_meta(self.meta(i), self.range(i))
    }

    /// Every item, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Item> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The items `keep` keeps (asked with the store and an index), in order. Nothing is
    /// copied or allocated when every item is kept.
    pub fn filter(self, mut keep: impl FnMut(&Items, usize) -> bool) -> Items {
        let Some(first_out) = (0..self.len()).find(|&i| !keep(&self, i)) else { return self };
        let kept: Vec<usize> = (0..first_out).chain((first_out + 1..self.len()).filter(|&i| keep(&self, i))).collect();
        self.permute(&kept, |i| i)
    }

    /// The items at `order` (indices given through `at`), in that order, built one column at a
    /// time and each old column dropped once copied: at ten million objects the peak is the
    /// old store plus the new keys, not two stores.
    fn permute<I: Copy>(self, order: &[I], at: impl Fn(I) -> usize) -> Items {
        let Items { keys, ends, sizes, md5, etag_shape, mtimes, mut rare } = self;
        let key_bytes: usize = order
            .iter()
            .map(|&o| {
                let i = at(o);
                let start = if i == 0 { 0 } else { ends[i - 1] };
                (ends[i] - start) as usize
            })
            .sum();
        let mut new_keys = String::with_capacity(key_bytes);
        let mut new_ends = Vec::with_capacity(order.len());
        for &o in order {
            let i = at(o);
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            new_keys.push_str(&keys[start..ends[i] as usize]);
            new_ends.push(new_keys.len() as u64);
        }
        drop((keys, ends));
        fn column<T: Copy, I: Copy>(old: Vec<T>, order: &[I], at: &impl Fn(I) -> usize) -> Vec<T> {
            order.iter().map(|&o| old[at(o)]).collect()
        }
        let sizes = column(sizes, order, &at);
        let md5 = column(md5, order, &at);
        let etag_shape = column(etag_shape, order, &at);
        let mtimes = column(mtimes, order, &at);
        let mut new_rare = BTreeMap::new();
        if !rare.is_empty() {
            for (new, &o) in order.iter().enumerate() {
                if let Some(r) = rare.get(&at(o)) {
                    // An index taken twice keeps its entry for each.
                    new_rare.insert(new, r.clone());
                }
            }
            rare.clear();
        }
        Items { keys: new_keys, ends: new_ends, sizes, md5, etag_shape, mtimes, rare: new_rare }
    }

    /// The items reordered by blocks: `blocks` (`start..end` index ranges, together every
    /// item once) each sorted by key, such as the pages of a listing. When the blocks' key spans
    /// do not overlap, putting the blocks in order of their first keys sorts every item with no
    /// comparison between keys of one block: linear, where sorting ten million keys is not.
    /// Otherwise (or when the blocks do not cover every item) nothing is moved and
    /// [`Items::sorted_unique`] sorts.
    pub fn in_block_order(self, blocks: &[std::ops::Range<usize>]) -> Items {
        let mut blocks: Vec<std::ops::Range<usize>> = blocks.iter().filter(|b| !b.is_empty()).cloned().collect();
        if blocks.iter().map(ExactSizeIterator::len).sum::<usize>() != self.len()
            || blocks.iter().any(|b| b.end > self.len())
            || u32::try_from(self.len()).is_err()
        {
            return self;
        }
        blocks.sort_by(|a, b| self.key(a.start).cmp(self.key(b.start)));
        let ordered = blocks.windows(2).all(|w| self.key(w[0].end - 1) < self.key(w[1].start))
            && blocks.iter().all(|b| (b.start + 1..b.end).all(|i| self.key(i - 1) < self.key(i)));
        if !ordered {
            return self;
        }
        if blocks.windows(2).all(|w| w[0].end == w[1].start) {
            return self;
        }
        let order: Vec<u32> = blocks.iter().flat_map(|b| b.start as u32..b.end as u32).collect();
        self.permute(&order, |i| i as usize)
    }

    /// Sorted by key, one item per key (the first pushed of equal keys). Listings of ranges
    /// listed at once arrive out of order; a sorted listing is not moved.
    pub fn sorted_unique(self) -> Items {
        if (1..self.len()).all(|i| self.key(i - 1) < self.key(i)) {
            return self;
        }
        // 4-byte indices where they fit: 40 MB, not 80, at ten million.
        if let Ok(n) = u32::try_from(self.len()) {
            let mut order: Vec<u32> = (0..n).collect();
            order.sort_unstable_by(|&a, &b| self.key(a as usize).cmp(self.key(b as usize)).then(a.cmp(&b)));
            order.dedup_by(|a, b| self.key(*a as usize) == self.key(*b as usize));
            return self.permute(&order, |i| i as usize);
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_unstable_by(|&a, &b| self.key(a).cmp(self.key(b)).then(a.cmp(&b)));
        order.dedup_by(|a, b| self.key(*a) == self.key(*b));
        self.permute(&order, |i| i)
    }

    /// Sorted by key; items of equal keys keep the order they were pushed in.
    pub fn sorted_stable(self) -> Items {
        if (1..self.len()).all(|i| self.key(i - 1) <= self.key(i)) {
            return self;
        }
        if let Ok(n) = u32::try_from(self.len()) {
            let mut order: Vec<u32> = (0..n).collect();
            order.sort_by(|&a, &b| self.key(a as usize).cmp(self.key(b as usize)));
            return self.permute(&order, |i| i as usize);
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by(|&a, &b| self.key(a).cmp(self.key(b)));
        self.permute(&order, |i| i)
    }

    /// The items of key `key` (a range of indices, empty when there are none) in a store
    /// sorted by key.
    pub fn equal_range(&self, key: &str) -> std::ops::Range<usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut end = lo;
        while end < self.len() && self.key(end) == key {
            end += 1;
        }
        lo..end
    }

    /// Gives back what the columns hold beyond their length.
    pub fn shrink_to_fit(&mut self) {
        self.keys.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.sizes.shrink_to_fit();
        self.md5.shrink_to_fit();
        self.etag_shape.shrink_to_fit();
        self.mtimes.shrink_to_fit();
    }

    /// Bytes the columns take (their capacity), the side table counted at 96 bytes an entry.
    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity()
            + self.ends.capacity() * 8
            + self.sizes.capacity() * 8
            + self.md5.capacity() * 16
            + self.etag_shape.capacity() * 4
            + self.mtimes.capacity() * 8
            + self.rare.len() * 96
    }
}

impl From<Vec<ObjectMeta>> for Items {
    fn from(objects: Vec<ObjectMeta>) -> Items {
        let mut items = Items::with_capacity(objects.len());
        // Each object's key and ETag are freed as it is taken: the Vec's strings and the store
        // are not both whole in memory.
        for object in objects {
            items.push(&object, None);
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta(key: &str, etag: Option<&str>, mtime: Option<u64>, encoding: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: key.len() as u64 * 7,
            etag: etag.map(str::to_string),
            mtime_ns: mtime,
            content_encoding: encoding.map(str::to_string),
        }
    }

    #[test]
    fn every_etag_spelling_comes_back_exactly() {
        let spellings = [
            "\"0123456789abcdef0123456789abcdef\"",
            "\"0123456789abcdef0123456789abcdef-17\"",
            "\"0123456789ABCDEF0123456789ABCDEF\"",
            "\"0123456789abcdef0123456789abcdef-017\"",
            "0123456789abcdef0123456789abcdef",
            "\"short\"",
            "W/\"weak\"",
            "\"\"",
            "\"0123456789abcdef0123456789abcdef-\"",
        ];
        let mut items = Items::default();
        for (i, e) in spellings.iter().enumerate() {
            items.push(&meta(&format!("k{i}"), Some(e), None, None), None);
        }
        for (i, e) in spellings.iter().enumerate() {
            assert_eq!(items.etag(i).as_deref(), Some(*e));
        }
        // Only the odd spellings take the side table.
        assert_eq!(items.rare.len(), spellings.len() - 2);
    }

    #[test]
    fn unicode_keys_ranges_and_encodings_round_trip() {
        let objects = [
            meta("a/ü/😀.json", Some("\"0123456789abcdef0123456789abcdef\""), None, Some("gzip")),
            meta("", None, Some(5), None),
            meta("b,c\"d\n", None, None, None),
        ];
        let mut items = Items::default();
        items.push(&objects[0], Some([0, 10]));
        items.push(&objects[0], Some([10, 21]));
        items.push(&objects[1], None);
        items.push(&objects[2], None);
        assert_eq!(items.meta(0), objects[0]);
        assert_eq!(items.meta(1), objects[0]);
        assert_eq!(items.meta(2), objects[1]);
        assert_eq!(items.meta(3), objects[2]);
        assert_eq!(items.get(1), Item::from_meta(objects[0].clone(), Some([10, 21])));
        assert_eq!((items.bytes(1), items.bytes(2)), (11, 0));
        items.set_content_encoding(0, None);
        assert_eq!(items.content_encoding(0), None);
        assert_eq!(items.range(0), Some([0, 10]), "the range stays");
    }

    proptest! {
        #[test]
        fn sorting_and_filtering_match_a_vec(
            keys in proptest::collection::vec("[a-c/é]{0,4}", 0..60),
            keep_mod in 1usize..4,
        ) {
            let objects: Vec<ObjectMeta> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    // MD5-shaped, odd (the side table) and absent ETags, and some encodings.
                    let etag = ["\"0123456789abcdef0123456789abcdef\"", "W/\"odd\"", ""][i % 3];
                    meta(k, Some(etag).filter(|e| !e.is_empty()), Some(i as u64), (i % 4 == 0).then_some("gzip"))
                })
                .collect();
            let items = Items::from(objects.clone());
            // What the planner did with a Vec: a stable sort, the first of equal keys kept.
            let mut expected = objects.clone();
            expected.sort_by(|a, b| a.key.cmp(&b.key));
            expected.dedup_by(|a, b| a.key == b.key);
            let sorted = items.sorted_unique();
            prop_assert_eq!((0..sorted.len()).map(|i| sorted.meta(i)).collect::<Vec<_>>(), expected.clone());
            let filtered = sorted.filter(|s, i| (s.size(i) as usize).is_multiple_of(keep_mod));
            let expected: Vec<ObjectMeta> = expected.into_iter().filter(|o| (o.size as usize).is_multiple_of(keep_mod)).collect();
            prop_assert_eq!((0..filtered.len()).map(|i| filtered.meta(i)).collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn pages_of_disjoint_ranges_are_put_in_order_without_sorting_keys() {
        // Pages as a listing of ranges at once gives them: each sorted, out of order.
        let pages: [&[&str]; 4] = [&["m", "n"], &["a", "b", "c"], &["x"], &["d", "k"]];
        let mut items = Items::default();
        let mut blocks = Vec::new();
        for page in pages {
            let start = items.len();
            for (i, k) in page.iter().enumerate() {
                let etag = if i % 2 == 0 { "W/\"odd\"" } else { "\"0123456789abcdef0123456789abcdef\"" };
                items.push(&meta(k, Some(etag), None, None), None);
            }
            blocks.push(start..items.len());
        }
        let expected: Vec<ObjectMeta> = {
            let mut all: Vec<ObjectMeta> = (0..items.len()).map(|i| items.meta(i)).collect();
            all.sort_by(|a, b| a.key.cmp(&b.key));
            all
        };
        let ordered = items.in_block_order(&blocks);
        assert_eq!((0..ordered.len()).map(|i| ordered.meta(i)).collect::<Vec<_>>(), expected);
        // Overlapping blocks are left for the full sort.
        let mut items = Items::default();
        for k in ["a", "m", "b", "z"] {
            items.push(&meta(k, None, None, None), None);
        }
        let left = items.clone().in_block_order(&[0..2, 2..4]);
        assert_eq!(left, items);
        assert_eq!(
            items.clone().in_block_order(std::slice::from_ref(&(0..2))),
            items,
            "blocks that miss items move nothing"
        );
    }

    #[test]
    fn an_item_costs_its_key_and_44_bytes() {
        let mut items = Items::default();
        for i in 0..100_000u64 {
            let key = format!("data/{i:08}");
            items.push(&meta(&key, Some(&format!("\"{i:032x}\"")), None, None), None);
        }
        items.shrink_to_fit();
        assert_eq!(items.heap_bytes(), 100_000 * (13 + 44));
    }
}
