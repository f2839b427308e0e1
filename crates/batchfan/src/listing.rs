//! Listing a prefix as many key ranges at once.
//!
//! One ListObjectsV2 stream returns about 1,000 keys per request, so ten million objects take
//! 10,000 requests one after another (5 to 8 minutes at S3's usual 30 to 50 ms a request). Here
//! the key space is cut into ranges listed at the same time: first at the delimiter's common
//! prefixes (Hive partitions, dates), then, whenever a range turns out to hold more than a page
//! while requests are free, at the characters after the last key it returned (a range holding
//! `data/00000999` and more is cut at `data/1`, `data/2`, ...; if every key starts with `data/0`,
//! the next page cuts at `data/01`, `data/02`, ...). Ranges are `(after, upto]` in byte order
//! (S3's `StartAfter` and a stop at the first key past `upto`), so together they hold every key
//! exactly once, whatever the key space looks like. Only `StartAfter`, `Delimiter` and
//! continuation tokens are used: S3-compatible servers list the same way.
//!
//! A listing is a sequence of requests, not a snapshot: a key created or deleted while it runs
//! may or may not be seen, as with one stream (the ranges only make that window shorter). What a
//! run then reads is pinned by the ETags listed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;

use crate::error::Result;
use crate::store::{ListPage, ObjectMeta, ObjectStream, PageRequest, Store};

/// Ranges listed at once by default (`--list-concurrency`). At 30 ms a request, 64 streams ask
/// about 2,100 requests a second: about 35 times one stream, under S3's 5,500 GET-class requests
/// a second per prefix, and no more connections than the SDK's pool keeps open.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// The most ranges listed at once (`--list-concurrency`).
pub const MAX_CONCURRENCY: usize = 1_000;

/// How a listing is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListOptions {
    /// Ranges listed at once (1: one stream, [`Store::list`]).
    pub concurrency: usize,
    /// Keys per request (`None`: the store's default, 1,000 on S3). Small pages make small key
    /// spaces split as large ones do (the tests' use).
    pub page_keys: Option<u32>,
}

impl ListOptions {
    /// `concurrency` ranges at once, pages of the store's default size.
    pub fn new(concurrency: usize) -> ListOptions {
        ListOptions { concurrency, page_keys: None }
    }

    /// Pages of at most `keys` keys.
    pub fn page_keys(mut self, keys: u32) -> ListOptions {
        self.page_keys = Some(keys);
        self
    }
}

/// What a listing did, counted as it goes.
#[derive(Debug, Default)]
pub struct ListStats {
    requests: AtomicU64,
    ranges: AtomicU64,
}

impl ListStats {
    /// List requests sent.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Key ranges the listing was cut into (1 for one stream).
    pub fn ranges(&self) -> u64 {
        self.ranges.load(Ordering::Relaxed)
    }
}

/// Keys of `(after, upto]` under `prefix`, continuing from `token`.
#[derive(Debug, Clone)]
struct Range {
    prefix: Arc<str>,
    after: Option<String>,
    upto: Option<String>,
    token: Option<String>,
}

/// What a request in flight asks: a prefix's first, delimited page (its common prefixes are
/// the first cuts), or a page of a range.
enum Ask {
    First(Arc<str>),
    Range(Range),
}

/// A request in flight and its answer.
type Pending<'a> = BoxFuture<'a, (Ask, Result<Option<ListPage>>)>;

struct State<'a> {
    store: &'a dyn Store,
    /// The prefixes listed (they never hold one another).
    prefixes: Vec<String>,
    concurrency: usize,
    page_keys: Option<u32>,
    stats: Arc<ListStats>,
    queued: VecDeque<Ask>,
    in_flight: FuturesUnordered<Pending<'a>>,
    ready: VecDeque<ObjectMeta>,
    /// The store lists no pages: its own listing instead.
    whole: Option<ObjectStream<'a>>,
    done: bool,
}

/// Every object under `prefix`, listed as up to `concurrency` key ranges at once (1: one stream,
/// [`Store::list`]); stores without paged listings ([`Store::list_page`] is `None`: local folders)
/// are listed by [`Store::list`]. Objects come in no particular order, each once.
pub fn list<'a>(store: &'a dyn Store, prefix: &str, concurrency: usize) -> ObjectStream<'a> {
    list_counted(store, prefix, ListOptions::new(concurrency), Arc::default())
}

/// [`list`] a page at a time: each page's objects are in key order and lie in one key range,
/// and the ranges of different pages never overlap, so sorting the pages by their first key
/// sorts the listing (what the planner does instead of sorting every key). A store without
/// paged listings gives its objects in pages of up to 1,000, in its own order.
pub fn list_pages<'a>(
    store: &'a dyn Store,
    prefix: &str,
    concurrency: usize,
) -> futures_util::stream::BoxStream<'a, Result<Vec<ObjectMeta>>> {
    list_pages_of(store, &[prefix.to_string()], ListOptions::new(concurrency), Arc::default())
}

/// [`list_pages`] of every object under any of `prefixes` (none of them holding another, as the
/// literal prefixes of `--include` globs): their ranges share one `concurrency`, so a big prefix
/// beside small ones gets the requests they no longer need. With `concurrency` 1 the prefixes
/// are listed one stream after another, in key order (a page may then span two of them: it is
/// still in key order). Requests and ranges are counted into `stats`.
pub fn list_pages_of<'a>(
    store: &'a dyn Store,
    prefixes: &[String],
    options: ListOptions,
    stats: Arc<ListStats>,
) -> futures_util::stream::BoxStream<'a, Result<Vec<ObjectMeta>>> {
    let mut prefixes = prefixes.to_vec();
    prefixes.sort();
    if options.concurrency <= 1 {
        stats.ranges.fetch_add(prefixes.len() as u64, Ordering::Relaxed);
        let objects = futures_util::stream::iter(prefixes).flat_map(move |p| store.list(&p));
        return Box::pin(objects.chunks(1_000).map(|page| page.into_iter().collect()));
    }
    let state = start(store, &prefixes, options, stats);
    Box::pin(futures_util::stream::unfold(state, |mut state| async move {
        let page = state.next_page().await?;
        Some((page, state))
    }))
}

/// [`list`] with pages of a chosen size, counting requests and ranges into `stats`.
pub fn list_counted<'a>(
    store: &'a dyn Store,
    prefix: &str,
    options: ListOptions,
    stats: Arc<ListStats>,
) -> ObjectStream<'a> {
    if options.concurrency <= 1 {
        stats.ranges.fetch_add(1, Ordering::Relaxed);
        return store.list(prefix);
    }
    let state = start(store, &[prefix.to_string()], options, stats);
    Box::pin(futures_util::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    }))
}

/// The state of a listing of ranges at once, each prefix's first (delimited) request queued.
fn start<'a>(store: &'a dyn Store, prefixes: &[String], options: ListOptions, stats: Arc<ListStats>) -> State<'a> {
    State {
        store,
        prefixes: prefixes.to_vec(),
        concurrency: options.concurrency.min(MAX_CONCURRENCY),
        page_keys: options.page_keys,
        stats,
        // The first request of a prefix asks for its common prefixes: the natural cuts where
        // the data has them.
        queued: prefixes.iter().map(|p| Ask::First(Arc::from(p.as_str()))).collect(),
        in_flight: FuturesUnordered::new(),
        ready: VecDeque::new(),
        whole: None,
        done: false,
    }
}

impl<'a> State<'a> {
    /// The objects of the next page (of one range, in key order), or a page of up to 1,000 of
    /// a store without paged listings.
    async fn next_page(&mut self) -> Option<Result<Vec<ObjectMeta>>> {
        if self.whole.is_none()
            && self.ready.is_empty()
            && let Some(first) = self.next().await
        {
            // `next` took one object of a new page; the rest of that page is `ready`.
            return Some(first.map(|object| std::iter::once(object).chain(self.ready.drain(..)).collect()));
        }
        if !self.ready.is_empty() {
            return Some(Ok(self.ready.drain(..).collect()));
        }
        let whole = self.whole.as_mut()?;
        let mut page = Vec::new();
        while page.len() < 1_000 {
            match whole.next().await {
                Some(Ok(object)) => page.push(object),
                Some(Err(e)) => return Some(Err(e)),
                None => break,
            }
        }
        (!page.is_empty()).then_some(Ok(page))
    }

    async fn next(&mut self) -> Option<Result<ObjectMeta>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(whole) = self.whole.as_mut() {
                return whole.next().await;
            }
            if let Some(object) = self.ready.pop_front() {
                return Some(Ok(object));
            }
            while self.in_flight.len() < self.concurrency {
                let Some(ask) = self.queued.pop_front() else { break };
                self.in_flight.push(self.request(ask));
            }
            let (ask, page) = self.in_flight.next().await?;
            match page {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                // A store without paged listings answers every first request so, before any
                // range is listed: its own listing of each prefix instead.
                Ok(None) => {
                    if self.whole.is_none() {
                        let (store, prefixes) = (self.store, self.prefixes.clone());
                        self.whole =
                            Some(Box::pin(futures_util::stream::iter(prefixes).flat_map(move |p| store.list(&p))));
                    }
                }
                Ok(Some(page)) => match ask {
                    Ask::First(prefix) => self.start(prefix, page.common_prefixes),
                    Ask::Range(range) => {
                        if let Err(e) = self.take(range, page) {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                },
            }
        }
    }

    fn request(&self, ask: Ask) -> Pending<'a> {
        let store = self.store;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let request = match &ask {
            Ask::First(prefix) => PageRequest::new(prefix).delimiter('/'),
            Ask::Range(range) => {
                PageRequest::new(&range.prefix).start_after(range.after.clone()).token(range.token.clone())
            }
        }
        .max_keys(self.page_keys);
        Box::pin(async move {
            let page = store.list_page(&request).await;
            (ask, page)
        })
    }

    /// Ranges of `prefix` between the cuts: `(None, c1], (c1, c2], ..., (cn, None]`. The keys
    /// under a common prefix sort after it and before the next one, so each lands in the range
    /// the prefix opens.
    fn start(&mut self, prefix: Arc<str>, cuts: Vec<String>) {
        self.stats.ranges.fetch_add(cuts.len() as u64 + 1, Ordering::Relaxed);
        let mut after = None;
        for cut in cuts {
            let range = Range { prefix: prefix.clone(), after: after.take(), upto: Some(cut.clone()), token: None };
            self.queued.push_back(Ask::Range(range));
            after = Some(cut);
        }
        self.queued.push_back(Ask::Range(Range { prefix, after, upto: None, token: None }));
    }

    /// Keeps the page's keys inside the range, then continues the range (cut first when requests
    /// are free) unless it is done. A first page holding keys at or before the range's start
    /// means the server ignores `StartAfter`: ranges would overlap, so that is an error.
    fn take(&mut self, mut range: Range, page: ListPage) -> Result<()> {
        if let (None, Some(after), Some(first)) = (&range.token, &range.after, page.objects.first())
            && first.key.as_str() <= after.as_str()
        {
            return Err(crate::error::Error::Storage {
                op: "ListObjectsV2",
                uri: self.store.location().join_display(&range.prefix),
                message: format!(
                    "asked for keys after `{after}`, the server returned `{}`: it does not honour StartAfter, so key ranges cannot be listed at once; list with --list-concurrency 1",
                    first.key
                ),
                transient: false,
                source: None,
            });
        }
        let past_end = |key: &str| range.upto.as_deref().is_some_and(|upto| key > upto);
        self.ready.extend(page.objects.into_iter().filter(|o| !past_end(&o.key)));
        let ended = page.last_key.as_deref().is_some_and(past_end);
        let Some(token) = page.next.filter(|_| !ended) else { return Ok(()) };
        let busy = self.queued.len() + self.in_flight.len() + 1;
        if busy < self.concurrency
            && let Some(last) = page.last_key.as_deref()
        {
            let cuts = cuts_after(last, range.upto.as_deref(), &range.prefix);
            self.stats.ranges.fetch_add(cuts.len() as u64, Ordering::Relaxed);
            if let Some(first) = cuts.first() {
                let old_upto = range.upto.replace(first.clone());
                let mut after = first.clone();
                for cut in cuts.into_iter().skip(1) {
                    let part = Range {
                        prefix: range.prefix.clone(),
                        after: Some(after),
                        upto: Some(cut.clone()),
                        token: None,
                    };
                    self.queued.push_back(Ask::Range(part));
                    after = cut;
                }
                let rest = Range { prefix: range.prefix.clone(), after: Some(after), upto: old_upto, token: None };
                self.queued.push_back(Ask::Range(rest));
            }
        }
        range.token = Some(token);
        self.queued.push_front(Ask::Range(range));
        Ok(())
    }
}

/// Where to cut the rest of a range, `(last, upto]`: at the shallowest position after `prefix`
/// where characters greater than `last`'s own fit below `upto`. Within a class of characters
/// (digits, lower-case, upper-case letters) every character is a cut and the end of the class is
/// one more; elsewhere the printable ASCII characters and the starts of the 2-, 3- and 4-byte
/// UTF-8 ranges are. Cuts are sorted, greater than `last`, smaller than `upto`.
fn cuts_after(last: &str, upto: Option<&str>, prefix: &str) -> Vec<String> {
    let chars: Vec<char> = last.chars().collect();
    let start = prefix.chars().count().min(chars.len());
    for depth in start..=chars.len() {
        let base: String = chars[..depth].iter().collect();
        let here = chars.get(depth).copied();
        let candidates: Vec<char> = match here {
            Some(c @ '0'..='9') => (c..=':').skip(1).collect(),
            Some(c @ 'a'..='z') => (c..='{').skip(1).collect(),
            Some(c @ 'A'..='Z') => (c..='[').skip(1).collect(),
            _ => {
                ('!'..='~').chain(['\u{80}', '\u{800}', '\u{10000}']).filter(|c| here.is_none_or(|h| *c > h)).collect()
            }
        };
        let cuts: Vec<String> = candidates
            .into_iter()
            .map(|c| format!("{base}{c}"))
            .filter(|cut| upto.is_none_or(|upto| cut.as_str() < upto))
            .collect();
        if !cuts.is_empty() {
            return cuts;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_lie_between_the_last_key_and_the_end_in_order() {
        let cuts = cuts_after("data/00000999", None, "data/");
        assert_eq!(cuts.first().map(String::as_str), Some("data/1"));
        assert_eq!(cuts.last().map(String::as_str), Some("data/:"));
        let cuts = cuts_after("data/00000999", Some("data/1"), "data/");
        assert_eq!(
            cuts,
            [
                "data/01", "data/02", "data/03", "data/04", "data/05", "data/06", "data/07", "data/08", "data/09",
                "data/0:"
            ]
        );
        for (last, upto) in [("a", None), ("a/b=7/zz", Some("a/b=8")), ("é", None), ("~~", None), ("k\u{10FFFF}", None)]
        {
            let cuts = cuts_after(last, upto, "");
            assert!(cuts.windows(2).all(|w| w[0] < w[1]), "{last}: {cuts:?}");
            assert!(cuts.iter().all(|c| c.as_str() > last && upto.is_none_or(|u| c.as_str() < u)), "{last}: {cuts:?}");
        }
        // Nothing fits between a key and the smallest key after it.
        assert_eq!(cuts_after("a", Some("a\u{1}"), ""), Vec::<String>::new());
    }
}
