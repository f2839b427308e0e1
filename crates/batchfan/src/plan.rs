//! Planning: list the input, filter it, split large objects, pack items into chunks.
//!
//! Everything after listing is pure and deterministic: the same objects and options give the
//! same plan (items sorted by key), whatever store they came from.

use futures_util::{StreamExt, TryStreamExt};
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::codec::Codec;
use crate::contract::Item;
use crate::error::{Error, Result};
pub use crate::items::Items;
use crate::limits;
use crate::registry::StoreRegistry;
use crate::store::{self, ObjectMeta, Store};
use crate::uri::Location;

/// Default `--max-items-per-chunk` when no packing option is given.
pub const DEFAULT_MAX_ITEMS_PER_CHUNK: u64 = 1_000;
/// Default `--max-bytes-per-chunk` when no packing option is given.
pub const DEFAULT_MAX_BYTES_PER_CHUNK: u64 = 1 << 30;
/// HEAD requests in flight when resolving an input list.
const LIST_FILE_CONCURRENCY: usize = 32;

/// How to turn a listing into chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Keep only keys matching one of these globs (a glob without `/` matches the file name).
    pub include: Vec<String>,
    /// Drop keys matching one of these globs.
    pub exclude: Vec<String>,
    /// Most items per chunk.
    pub max_items_per_chunk: Option<u64>,
    /// Most bytes per chunk (an item larger than this gets a chunk of its own).
    pub max_bytes_per_chunk: Option<u64>,
    /// This many chunks (fewer only when there are fewer items), balanced by bytes.
    pub children: Option<u64>,
    /// Split newline-delimited objects larger than this into ranges of this size.
    pub split_bytes: Option<u64>,
    /// Most chunks allowed (one array job: [`limits::MAX_ARRAY_SIZE`]).
    pub max_chunks: usize,
    /// A list file (local or S3) naming the keys to plan, one per line, instead of listing the
    /// input (keys relative to the input, or full URIs under it; blank lines and `#` comments
    /// are skipped).
    pub input_list: Option<String>,
    /// An S3 Inventory report (its `manifest.json`, or the inventory configuration's folder:
    /// the newest complete delivery) naming the objects to plan instead of listing the input
    /// (`--input-inventory`; [`crate::inventory`]).
    pub input_inventory: Option<String>,
    /// An input with nothing to plan (a daily partition with no files) gives a plan of zero
    /// chunks instead of [`Error::EmptyInput`].
    pub allow_empty: bool,
    /// Key ranges of an S3 input listed at once ([`crate::listing`]; 1 is one stream).
    pub list_concurrency: usize,
    /// Plan only objects modified after this time (ms since the epoch; S3 `LastModified`, local
    /// modification time): `--modified-after TIME|RUN`.
    pub modified_after_ms: Option<u64>,
    /// Leave out objects that runs recorded in these outputs already committed at the same
    /// version (`--skip-done OUTPUT`, repeatable; [`crate::incremental`]).
    pub skip_done: Vec<String>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            include: Vec::new(),
            exclude: Vec::new(),
            max_items_per_chunk: None,
            max_bytes_per_chunk: None,
            children: None,
            split_bytes: None,
            max_chunks: limits::MAX_ARRAY_SIZE,
            input_list: None,
            input_inventory: None,
            allow_empty: false,
            list_concurrency: crate::listing::DEFAULT_CONCURRENCY,
            modified_after_ms: None,
            skip_done: Vec::new(),
        }
    }
}

impl PlanOptions {
    /// Checks the options before any request is made.
    pub fn validate(&self) -> Result<()> {
        if let Some(n) = self.max_items_per_chunk {
            limits::check_positive("--max-items-per-chunk", n, None)?;
        }
        if let Some(n) = self.max_bytes_per_chunk {
            limits::check_positive("--max-bytes-per-chunk", n, None)?;
        }
        if let Some(n) = self.split_bytes {
            limits::check_positive("--split-bytes", n, None)?;
        }
        if let Some(n) = self.children {
            limits::check_positive("--children", n, Some(self.max_chunks as u64))?;
        }
        limits::check_positive(
            "--list-concurrency",
            self.list_concurrency as u64,
            Some(crate::listing::MAX_CONCURRENCY as u64),
        )?;
        if let (Some(_), Some(inventory)) = (&self.input_list, &self.input_inventory) {
            return Err(Error::option(
                "--input-inventory",
                inventory,
                "either --input-list or --input-inventory, not both: both name the objects to plan",
            ));
        }
        self.filters().map(|_| ())
    }

    fn filters(&self) -> Result<Filters> {
        Ok(Filters {
            include: GlobPair::new("--include", &self.include)?,
            exclude: GlobPair::new("--exclude", &self.exclude)?,
        })
    }

    fn limits(&self) -> (u64, u64) {
        match (self.max_items_per_chunk, self.max_bytes_per_chunk, self.children) {
            (None, None, None) => (DEFAULT_MAX_ITEMS_PER_CHUNK, DEFAULT_MAX_BYTES_PER_CHUNK),
            (items, bytes, _) => (items.unwrap_or(u64::MAX), bytes.unwrap_or(u64::MAX)),
        }
    }
}

/// Globs split by what they match: the whole key (globs with `/`) or the file name.
struct GlobPair {
    path: GlobSet,
    name: GlobSet,
    empty: bool,
    /// The patterns of `path`, as written.
    path_patterns: Vec<String>,
}

impl GlobPair {
    fn new(field: &str, patterns: &[String]) -> Result<GlobPair> {
        let mut path = GlobSetBuilder::new();
        let mut name = GlobSetBuilder::new();
        let mut path_patterns = Vec::new();
        for pattern in patterns {
            let glob: Glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::option(field, pattern, format!("not a valid glob: {e}")))?;
            if pattern.contains('/') {
                path.add(glob);
                path_patterns.push(pattern.clone());
            } else {
                name.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| b.build().map_err(|e| Error::option(field, patterns.join(","), e.to_string()));
        let empty = patterns.is_empty();
        Ok(GlobPair { path: build(path)?, name: build(name)?, empty, path_patterns })
    }

    fn matches(&self, key: &str) -> bool {
        let file = key.rsplit('/').next().unwrap_or(key);
        self.path.is_match(key) || self.name.is_match(file)
    }
}

struct Filters {
    include: GlobPair,
    exclude: GlobPair,
}

impl Filters {
    /// The key prefixes a listing must cover: the literal start (up to its last `/`) of every
    /// `--include` path glob, so `dt=2026-11-27/**` lists only `dt=2026-11-27/`. One empty
    /// prefix (everything) when there is no include, or one that matches file names anywhere.
    fn list_prefixes(&self) -> Vec<String> {
        if self.include.empty || !self.include.name.is_empty() {
            return vec![String::new()];
        }
        let mut prefixes: Vec<String> = self
            .include
            .path_patterns
            .iter()
            .map(|p| {
                let literal = &p[..p.find(['*', '?', '[', '{', '\\']).unwrap_or(p.len())];
                literal[..literal.rfind('/').map_or(0, |i| i + 1)].to_string()
            })
            .collect();
        prefixes.sort();
        prefixes.dedup();
        // A prefix inside another is listed by it.
        let mut kept: Vec<String> = Vec::new();
        for p in prefixes {
            if !kept.iter().any(|k| p.starts_with(k.as_str())) {
                kept.push(p);
            }
        }
        kept
    }

    fn keep(&self, key: &str) -> bool {
        !is_batchfan_own(key) && (self.include.empty || self.include.matches(key)) && !self.exclude.matches(key)
    }
}

/// True for batchfan's own files (a `_batchfan` folder anywhere in the key): never input.
pub fn is_batchfan_own(key: &str) -> bool {
    key.split('/').rev().skip(1).any(|segment| segment == crate::contract::META_DIR)
}

/// A run of consecutive items that one child processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChunkSpan {
    /// Index of the first item in [`Plan::items`].
    pub first: usize,
    /// Number of items.
    pub count: usize,
    /// Bytes to read (range lengths for split items).
    pub bytes: u64,
}

/// Where a plan's objects came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Listing the input.
    #[default]
    Listing,
    /// The keys of an `--input-list` file.
    InputList,
    /// An S3 Inventory report (`--input-inventory`): what was read and skipped.
    Inventory(crate::inventory::InventoryStats),
}

impl Source {
    /// `listing`, `input_list` or `inventory`.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Listing => "listing",
            Source::InputList => "input_list",
            Source::Inventory(_) => "inventory",
        }
    }
}

/// The work: items in key order, packed into chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The input location item keys are relative to.
    pub input: Location,
    /// All items in order; split objects appear once per range.
    pub items: Items,
    /// Chunks over `items`, in order.
    pub chunks: Vec<ChunkSpan>,
    /// Objects listed before filtering.
    pub listed: usize,
    /// Objects kept after filtering.
    pub objects: usize,
    /// Split size used, if any.
    pub split_bytes: Option<u64>,
    /// Compressed objects larger than the split size, kept whole: a byte range of a compressed
    /// object cannot be decompressed alone.
    pub kept_whole_compressed: usize,
    /// Objects left out as not modified after `--modified-after`.
    pub left_out_unmodified: usize,
    /// Objects left out as committed by an earlier run (`--skip-done`).
    pub left_out_done: usize,
    /// Where the objects came from.
    pub source: Source,
}

impl Plan {
    /// Total bytes to read.
    pub fn total_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.bytes).sum()
    }

    /// The items of one chunk.
    pub fn chunk_items(&self, index: usize) -> Vec<Item> {
        self.chunks
            .get(index)
            .map_or_else(Vec::new, |c| (c.first..c.first + c.count).map(|i| self.items.get(i)).collect())
    }
}

/// The byte ranges a split of `size` bytes into `split`-byte pieces gives.
pub fn split_ranges(size: u64, split: u64) -> Vec<[u64; 2]> {
    let split = split.max(1);
    (0..size.div_ceil(split)).map(|i| [i * split, ((i + 1) * split).min(size)]).collect()
}

/// Plans listed objects (pure; no I/O). Keys are relative to `input`.
pub fn plan_objects(input: &Location, objects: Vec<ObjectMeta>, options: &PlanOptions) -> Result<Plan> {
    plan_items(input, Items::from(objects), options)
}

/// [`plan_objects`] over objects held in compact columns (what listing gives).
pub fn plan_items(input: &Location, objects: Items, options: &PlanOptions) -> Result<Plan> {
    options.validate()?;
    let filters = options.filters()?;
    let listed = objects.len();
    let objects = objects.filter(|o, i| filters.keep(o.key(i)));
    if objects.is_empty() && !options.allow_empty {
        let filtered =
            if listed > 0 { format!(" ({listed} listed, none left after --include/--exclude)") } else { String::new() };
        return Err(Error::EmptyInput { uri: input.to_string(), filtered });
    }
    let mut objects = objects.sorted_unique();
    objects.shrink_to_fit();
    let kept = objects.len();

    // Compressed objects are never split: a range of one cannot be decompressed alone.
    let splits = |i: usize| match options.split_bytes {
        Some(split) if objects.size(i) > split && Codec::of(objects.key(i), objects.content_encoding(i)).is_none() => {
            Some(split)
        }
        _ => None,
    };
    let kept_whole_compressed = options
        .split_bytes
        .map_or(0, |split| (0..kept).filter(|&i| objects.size(i) > split && splits(i).is_none()).count());
    let pieces = |i: usize| splits(i).map_or(1, |split| objects.size(i).div_ceil(split) as usize);
    // Counted before anything is allocated: `--split-bytes 1` over a large input would ask for
    // a range per byte.
    let ranges: usize = (0..kept).filter(|&i| splits(i).is_some()).map(pieces).sum();
    if ranges > limits::MAX_SPLIT_RANGES
        && let Some(split) = options.split_bytes
    {
        return Err(Error::option(
            "--split-bytes",
            crate::size::format_size(split),
            format!(
                "a size giving at most {} ranges: {} gives {ranges}; {} or more fits",
                limits::MAX_SPLIT_RANGES,
                crate::size::format_size(split),
                crate::size::format_size(smallest_split(&objects, split, &splits))
            ),
        ));
    }
    // Without splits the listing is the items: nothing is copied.
    let items = if ranges == 0 {
        objects
    } else {
        let mut items = Items::with_capacity((0..kept).map(pieces).sum());
        for i in 0..kept {
            let meta = objects.meta(i);
            match splits(i) {
                Some(split) => {
                    for range in split_ranges(meta.size, split) {
                        items.push(&meta, Some(range));
                    }
                }
                None => items.push(&meta, None),
            }
        }
        items
    };
    let chunks = pack((0..items.len()).map(|i| items.bytes(i)), options);
    limits::check_chunk_count(chunks.len(), options.max_chunks)?;
    Ok(Plan {
        input: input.clone(),
        items,
        chunks,
        listed,
        objects: kept,
        split_bytes: options.split_bytes,
        kept_whole_compressed,
        left_out_unmodified: 0,
        left_out_done: 0,
        source: Source::Listing,
    })
}

/// About the smallest split size (at least `from`) that gives at most
/// [`limits::MAX_SPLIT_RANGES`] ranges over `objects`: doubled until it fits, then lowered in
/// sixteenths while it still does.
fn smallest_split(objects: &Items, from: u64, splits: &impl Fn(usize) -> Option<u64>) -> u64 {
    let ranges = |split: u64| -> usize {
        (0..objects.len())
            .filter(|&i| splits(i).is_some() && objects.size(i) > split)
            .map(|i| objects.size(i).div_ceil(split) as usize)
            .sum()
    };
    let mut split = from.max(1);
    while ranges(split) > limits::MAX_SPLIT_RANGES && split < u64::MAX / 2 {
        split *= 2;
    }
    let step = (split / 16).max(1);
    while split > from + step && ranges(split - step) <= limits::MAX_SPLIT_RANGES {
        split -= step;
    }
    split
}

/// Packs item sizes into consecutive chunks.
///
/// With `children = N`, items form exactly `min(N, items)` consecutive groups of about equal
/// weight (bytes plus one per item, so empty objects count): each group closes once it would
/// pass the average of what is left, and always leaves at least one item per group still to
/// come. The item and byte limits then cut further.
pub fn pack(sizes: impl ExactSizeIterator<Item = u64> + Clone, options: &PlanOptions) -> Vec<ChunkSpan> {
    let (max_items, max_bytes) = options.limits();
    let n = sizes.len();
    let mut remaining: u128 = sizes.clone().map(|s| s as u128 + 1).sum();
    let mut groups_left = options.children.map_or(1, |c| (c.max(1) as usize).min(n.max(1))) as u128;
    let mut group_start_remaining = remaining;
    let mut group_weight: u128 = 0;
    let mut chunks: Vec<ChunkSpan> = Vec::new();
    let mut current: Option<ChunkSpan> = None;
    for (index, size) in sizes.enumerate() {
        let weight = size as u128 + 1;
        let mut new_group = false;
        if group_weight > 0 && groups_left > 1 {
            let must = ((n - index) as u128) < groups_left; // one item left per group to come
            // Closing is better once half of this item would pass the group's fair share.
            let over = (2 * group_weight + weight) * groups_left > 2 * group_start_remaining;
            if must || over {
                new_group = true;
                groups_left -= 1;
                group_start_remaining = remaining;
                group_weight = 0;
            }
        }
        match current.as_mut() {
            Some(chunk)
                if !new_group && (chunk.count as u64) < max_items && chunk.bytes.saturating_add(size) <= max_bytes =>
            {
                chunk.count += 1;
                chunk.bytes += size;
            }
            _ => {
                chunks.extend(current.take());
                current = Some(ChunkSpan { first: index, count: 1, bytes: size });
            }
        }
        group_weight += weight;
        remaining -= weight;
    }
    chunks.extend(current);
    chunks
}

/// What listing found: the objects the filters kept, and how many were listed.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Objects kept by `--include` / `--exclude`.
    pub objects: Items,
    /// Objects listed before filtering.
    pub listed: usize,
    /// Where the objects came from.
    pub source: Source,
}

/// Lists what to plan, filtering as it goes (so only kept objects are held in memory): every
/// object under `input`, (with `options.input_list`) the keys named in the list file, or (with
/// `options.input_inventory`) the objects under `input` an S3 Inventory report holds.
pub async fn list_input(stores: &StoreRegistry, input: &Location, options: &PlanOptions) -> Result<Listing> {
    let filters = options.filters()?;
    if let Some(inventory) = options.input_inventory.as_deref() {
        // The inventory is checked first: a bad one is named before any request to the input.
        let found = crate::inventory::read(stores, inventory, input, &|key| filters.keep(key)).await?;
        stores.store(input)?.check_root().await?;
        return Ok(Listing { objects: found.objects, listed: found.listed, source: Source::Inventory(found.stats) });
    }
    let store = stores.store(input)?;
    store.check_root().await?;
    let Some(list) = options.input_list.as_deref() else {
        let mut listing = Listing::default();
        // Each page is in key order and pages of ranges listed at once never overlap: putting
        // the pages in order sorts the listing without sorting its keys.
        // The prefixes of `--include` globs are listed together, their ranges sharing the
        // concurrency.
        let mut pages = Vec::new();
        let list = crate::listing::ListOptions::new(options.list_concurrency);
        let mut listed =
            crate::listing::list_pages_of(store.as_ref(), &filters.list_prefixes(), list, Default::default());
        while let Some(page) = listed.next().await {
            let start = listing.objects.len();
            for object in page? {
                listing.listed += 1;
                if filters.keep(&object.key) {
                    listing.objects.push(&object, None);
                }
            }
            pages.push(start..listing.objects.len());
        }
        drop(listed);
        listing.objects = listing.objects.in_block_order(&pages);
        return Ok(listing);
    };
    let (list_dir, list_name) = Location::parse_file(list)?;
    if let Location::Local { path } = &list_dir
        && path.join(&list_name).is_dir()
    {
        return Err(Error::option("--input-list", list, "a file listing keys, one per line: it names a folder"));
    }
    let list_store = stores.store(&list_dir)?;
    let text = store::read_all(list_store.as_ref(), &list_name, None, None).await.map_err(|e| match e {
        Error::NotFound { .. } => Error::option("--input-list", list, "a file that exists: there is none"),
        other => other,
    })?;
    let text = String::from_utf8(text.to_vec())
        .map_err(|_| Error::option("--input-list", list, "must be UTF-8 text, one key per line"))?;
    let keys = list_file_keys(&text, input, list)?;
    let listed = keys.len();
    let objects = heads(store.as_ref(), keys.into_iter().filter(|k| filters.keep(k)).collect(), list).await?;
    Ok(Listing { objects, listed, source: Source::InputList })
}

/// The keys of an `--input-list` file. A line is a key relative to `--input`, or a URI under it;
/// keys are taken as written (spaces included) but for a line ending `\r\n`. Blank lines, lines
/// starting with `#`, and folder markers (keys ending in `/`) are skipped. A URI outside
/// `--input` is an error naming it.
pub fn list_file_keys(text: &str, input: &Location, list: &str) -> Result<Vec<String>> {
    let prefix = input.to_string();
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let key = match line.strip_prefix(prefix.as_str()) {
            Some(rest) => rest.trim_start_matches('/'),
            None if line.starts_with("s3://") || line.starts_with('/') || line.starts_with("file://") => {
                return Err(Error::option(
                    "--input-list",
                    list,
                    format!(
                        "line {}: `{line}` is outside --input `{prefix}`; list keys under it (relative keys or URIs starting with it)",
                        n + 1
                    ),
                ));
            }
            None => line,
        };
        if !key.is_empty() && !key.ends_with('/') {
            keys.push(key.to_string());
        }
    }
    Ok(keys)
}

/// Looks every key up (HEAD, a few at a time); every missing key is named in one error. Answers
/// go into the compact item store as they arrive (in the list's order), so a long list is not
/// held as `ObjectMeta`s too.
async fn heads(store: &dyn Store, keys: Vec<String>, list: &str) -> Result<Items> {
    const SHOWN: usize = 20;
    let mut found = Items::with_capacity(keys.len());
    let (mut missing, mut names) = (0usize, Vec::new());
    let mut answers = futures_util::stream::iter(keys)
        .map(|key| async move { store.head(&key).await.map(|meta| (key, meta)) })
        .buffered(LIST_FILE_CONCURRENCY);
    while let Some((key, meta)) = answers.try_next().await? {
        match meta {
            Some(meta) => found.push(&meta, None),
            None => {
                missing += 1;
                if names.len() < SHOWN {
                    names.push(store.location().join_display(&key));
                }
            }
        }
    }
    if missing > 0 {
        let more = missing - names.len();
        return Err(Error::option(
            "--input-list",
            list,
            format!(
                "{missing} of its keys do not exist: {}{}; fix or remove those lines",
                names.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
        ));
    }
    Ok(found)
}

/// Lists and plans in one call: options are checked before anything is listed. Objects of
/// `--skip-done` outputs need the runs recorded there: plan those through
/// [`crate::Client::plan`] (or `incremental::plan`); here they are refused.
pub async fn plan(stores: &StoreRegistry, input: &Location, options: &PlanOptions) -> Result<Plan> {
    if let Some(output) = options.skip_done.first() {
        return Err(Error::option(
            "--skip-done",
            output,
            "needs the runs recorded in that output: plan with Client::plan (plan::plan does not read other runs)",
        ));
    }
    plan_with(stores, input, options, &|_| false).await
}

/// [`plan`], leaving out the objects `done` says earlier runs committed (`--skip-done`);
/// `done` is asked only when `options.skip_done` names outputs.
pub async fn plan_with(
    stores: &StoreRegistry,
    input: &Location,
    options: &PlanOptions,
    done: &(dyn Fn(&ObjectMeta) -> bool + Sync),
) -> Result<Plan> {
    options.validate()?;
    let listing = list_input(stores, input, options).await?;
    if listing.objects.is_empty() && listing.listed > 0 && !options.allow_empty {
        let filtered = format!(" ({} listed, none left after --include/--exclude)", listing.listed);
        return Err(Error::EmptyInput { uri: input.to_string(), filtered });
    }
    let mut objects = listing.objects;
    let kept = objects.len();
    if let Some(after) = options.modified_after_ms {
        // Objects whose store gives no time are kept: better processed twice than never.
        objects = objects.filter(|o, i| o.mtime_ns(i).is_none_or(|ns| ns / 1_000_000 > after));
    }
    let left_out_unmodified = kept - objects.len();
    let before = objects.len();
    if !options.skip_done.is_empty() {
        objects = objects.filter(|o, i| !done(&o.meta(i)));
    }
    let left_out_done = before - objects.len();
    if objects.is_empty() && kept > 0 && !options.allow_empty {
        let filtered = format!(
            " ({} listed, {kept} kept by --include/--exclude, all left out: {left_out_unmodified} not modified after --modified-after, {left_out_done} already committed in --skip-done; --allow-empty makes this a run of zero chunks)",
            listing.listed
        );
        return Err(Error::EmptyInput { uri: input.to_string(), filtered });
    }
    if let Some(split) = options.split_bytes {
        learn_content_encodings(stores, input, &mut objects, split).await?;
    }
    let mut plan = plan_items(input, objects, options)?;
    plan.listed = listing.listed;
    plan.left_out_unmodified = left_out_unmodified;
    plan.left_out_done = left_out_done;
    plan.source = listing.source;
    Ok(plan)
}

/// Listings do not carry `Content-Encoding`: ask (HEAD, 32 at a time) for each S3 object the
/// split would cut whose key does not already say it is compressed, so a `Content-Encoding: gzip`
/// object named `events.json` stays whole too.
async fn learn_content_encodings(
    stores: &StoreRegistry,
    input: &Location,
    objects: &mut Items,
    split: u64,
) -> Result<()> {
    if !input.is_s3() {
        return Ok(());
    }
    let store = stores.store(input)?;
    let asks: Vec<usize> =
        (0..objects.len()).filter(|&i| objects.size(i) > split && Codec::from_key(objects.key(i)).is_none()).collect();
    let store = &store;
    let found: Vec<(usize, Option<String>)> = futures_util::stream::iter(asks)
        .map(|i| {
            let key = objects.key(i).to_string();
            async move { Ok::<_, Error>((i, store.head(&key).await?.and_then(|m| m.content_encoding))) }
        })
        .buffer_unordered(32)
        .try_collect()
        .await?;
    for (i, encoding) in found {
        objects.set_content_encoding(i, encoding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn objects(sizes: &[u64]) -> Vec<ObjectMeta> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| ObjectMeta {
                key: format!("k{i:04}"),
                size,
                etag: Some(format!("\"e{i}\"")),
                mtime_ns: None,
                content_encoding: None,
            })
            .collect()
    }

    fn loc() -> Location {
        Location::parse("s3://bkt/in/").unwrap()
    }

    #[test]
    fn packs_by_items_and_bytes() {
        let opts = PlanOptions { max_items_per_chunk: Some(2), ..Default::default() };
        let plan = plan_objects(&loc(), objects(&[1, 2, 3, 4, 5]), &opts).unwrap();
        assert_eq!(plan.chunks.iter().map(|c| c.count).collect::<Vec<_>>(), vec![2, 2, 1]);
        let opts = PlanOptions { max_bytes_per_chunk: Some(5), ..Default::default() };
        let plan = plan_objects(&loc(), objects(&[3, 2, 9, 0, 0, 4]), &opts).unwrap();
        assert_eq!(plan.chunks.iter().map(|c| c.bytes).collect::<Vec<_>>(), vec![5, 9, 4]);
        assert_eq!(plan.chunks.iter().map(|c| c.count).collect::<Vec<_>>(), vec![2, 1, 3]);
    }

    #[test]
    fn children_balance_bytes() {
        let opts = PlanOptions { children: Some(4), ..Default::default() };
        let plan = plan_objects(&loc(), objects(&[10; 40]), &opts).unwrap();
        assert_eq!(plan.chunks.iter().map(|c| c.count).collect::<Vec<_>>(), vec![10, 10, 10, 10]);
        // Empty objects are items too and still spread.
        let plan = plan_objects(&loc(), objects(&[0; 8]), &opts).unwrap();
        assert_eq!(plan.chunks.len(), 4);
        // Large items first: still exactly N chunks, the small ones shared out.
        let plan = plan_objects(&loc(), objects(&[100, 100, 1, 1, 1, 1]), &opts).unwrap();
        assert_eq!(plan.chunks.iter().map(|c| c.count).collect::<Vec<_>>(), vec![1, 1, 2, 2]);
        // Fewer items than children: one item each.
        let plan = plan_objects(&loc(), objects(&[5, 5]), &opts).unwrap();
        assert_eq!(plan.chunks.len(), 2);
    }

    #[test]
    fn splits_large_objects() {
        let opts = PlanOptions { split_bytes: Some(4), max_items_per_chunk: Some(100), ..Default::default() };
        let plan = plan_objects(&loc(), objects(&[10, 3]), &opts).unwrap();
        let ranges: Vec<_> = plan.items.iter().map(|i| i.range).collect();
        assert_eq!(ranges, vec![Some([0, 4]), Some([4, 8]), Some([8, 10]), None]);
        assert_eq!(plan.total_bytes(), 13);
    }

    #[test]
    fn filters_and_sorts() {
        let mut objs = objects(&[1, 1, 1]);
        objs[0].key = "b/x.txt".into();
        objs[1].key = "a/y.csv".into();
        objs[2].key = "a/z.txt".into();
        let opts = PlanOptions { include: vec!["*.txt".into()], exclude: vec!["b/*".into()], ..Default::default() };
        let plan = plan_objects(&loc(), objs.clone(), &opts).unwrap();
        assert_eq!((0..plan.items.len()).map(|i| plan.items.key(i)).collect::<Vec<_>>(), vec!["a/z.txt"]);
        let opts = PlanOptions { include: vec!["*.none".into()], ..Default::default() };
        let err = plan_objects(&loc(), objs, &opts).unwrap_err();
        assert!(matches!(err, Error::EmptyInput { .. }), "{err}");
    }

    #[test]
    fn rejects_bad_options() {
        for opts in [
            PlanOptions { max_items_per_chunk: Some(0), ..Default::default() },
            PlanOptions { max_bytes_per_chunk: Some(0), ..Default::default() },
            PlanOptions { split_bytes: Some(0), ..Default::default() },
            PlanOptions { children: Some(0), ..Default::default() },
            PlanOptions { children: Some(10_001), ..Default::default() },
            PlanOptions { include: vec!["[".into()], ..Default::default() },
        ] {
            let err = plan_objects(&loc(), objects(&[1]), &opts).unwrap_err();
            assert!(err.is_bad_input(), "{err}");
        }
        let opts = PlanOptions { max_items_per_chunk: Some(1), ..Default::default() };
        let err = plan_objects(&loc(), objects(&vec![1; 10_001]), &opts).unwrap_err();
        assert!(matches!(err, Error::TooManyChunks { chunks: 10_001, .. }), "{err}");
    }

    proptest! {
        #[test]
        fn packing_covers_every_item_in_order_within_limits(
            sizes in proptest::collection::vec(0u64..1000, 1..300),
            max_items in proptest::option::of(1u64..20),
            max_bytes in proptest::option::of(1u64..3000),
            children in proptest::option::of(1u64..50),
        ) {
            let opts = PlanOptions { max_items_per_chunk: max_items, max_bytes_per_chunk: max_bytes, children, ..Default::default() };
            let chunks = pack(sizes.iter().copied(), &opts);
            let mut next = 0;
            for c in &chunks {
                prop_assert_eq!(c.first, next);
                prop_assert!(c.count >= 1);
                next += c.count;
                prop_assert_eq!(c.bytes, sizes[c.first..c.first + c.count].iter().sum::<u64>());
                if let Some(m) = max_items { prop_assert!(c.count as u64 <= m); }
                if let Some(m) = max_bytes { prop_assert!(c.bytes <= m || c.count == 1); }
            }
            prop_assert_eq!(next, sizes.len());
            if let (Some(n), None, None) = (children, max_items, max_bytes) {
                prop_assert_eq!(chunks.len() as u64, n.min(sizes.len() as u64), "exactly min(N, items) chunks");
            }
        }
    }
}
