//! [`StoreRegistry`]: from a [`Location`] to the [`Store`] that serves it (object_store's
//! `ObjectStoreRegistry` is the model). Planning, manifests, run records and reports take a
//! registry, never the [`crate::Client`]: the client holds one and hands it down.

use std::fmt;
use std::sync::Arc;

use crate::aws::Aws;
use crate::error::Result;
use crate::store::{LocalStore, PrefixStore, S3Store, Store};
use crate::uri::Location;

/// Resolves locations to stores: a store registered for the location or one above it, else S3
/// (through the client's S3 client, made on first use), else the local folder.
///
/// Cloning is cheap: the registered stores and the AWS side are shared.
#[derive(Clone)]
pub struct StoreRegistry {
    aws: Arc<Aws>,
    /// Longest registered root first, so the most specific store serves a location.
    stores: Arc<[(Location, Arc<dyn Store>)]>,
}

impl fmt::Debug for StoreRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreRegistry")
            .field("registered", &self.stores.iter().map(|(l, _)| l.to_string()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl StoreRegistry {
    pub(crate) fn new(aws: Arc<Aws>, mut stores: Vec<(Location, Arc<dyn Store>)>) -> StoreRegistry {
        stores.sort_by_key(|(l, _)| std::cmp::Reverse(l.to_string().len()));
        StoreRegistry { aws, stores: stores.into() }
    }

    /// The store for a location: a registered one (or a registered one above it, seen from the
    /// location down), else S3, else the local folder (made absolute).
    pub fn store(&self, location: &Location) -> Result<Arc<dyn Store>> {
        let location = location.absolute()?;
        for (root, store) in self.stores.iter() {
            if let Some(sub) = root.relative(&location) {
                return Ok(if sub.is_empty() {
                    store.clone()
                } else {
                    Arc::new(PrefixStore::new(store.clone(), &sub, location.clone()))
                });
            }
        }
        Ok(match &location {
            Location::S3 { bucket, prefix } => Arc::new(S3Store::lazy(self.aws.clone(), bucket, prefix)),
            Location::Local { .. } => Arc::new(LocalStore::new(location.clone())),
        })
    }

    /// The store of the folder holding the file `uri` names, and the file's key in it.
    pub fn file(&self, uri: &str) -> Result<(Arc<dyn Store>, String)> {
        let (dir, name) = Location::parse_file(uri)?;
        Ok((self.store(&dir)?, name))
    }
}

#[cfg(test)]
impl StoreRegistry {
    /// A registry for unit tests over local folders (no AWS configuration).
    pub(crate) fn for_tests() -> StoreRegistry {
        StoreRegistry::for_tests_with(Vec::new())
    }

    /// Its AWS side.
    pub(crate) fn aws(&self) -> Arc<Aws> {
        self.aws.clone()
    }

    /// A registry for unit tests serving `stores` (no AWS configuration).
    pub(crate) fn for_tests_with(stores: Vec<(Location, Arc<dyn Store>)>) -> StoreRegistry {
        let config = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let aws = crate::aws::Aws::new(crate::aws::AwsSettings {
            config: Some(config),
            retry_from_config: false,
            retry: crate::aws::default_retry_config(),
            force_path_style: None,
            batch_rps: 10.0,
            sqs_rps: 10.0,
        });
        StoreRegistry::new(Arc::new(aws), stores)
    }
}
