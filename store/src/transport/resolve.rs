//! Store ID → gRPC address, asked of PD and cached. A failed connection
//! drops the cached address, so a store that moved is found again.

use std::collections::HashMap;

use flotilla_client::pd::{PdClient, PdError};
use parking_lot::Mutex;

/// Resolves store addresses through PD.
pub struct Resolver {
    pd: PdClient,
    cache: Mutex<HashMap<u64, String>>,
}

impl Resolver {
    /// A resolver asking `pd`.
    pub fn new(pd: PdClient) -> Resolver {
        Resolver {
            pd,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The address of `store_id`.
    pub async fn resolve(&self, store_id: u64) -> Result<String, PdError> {
        if let Some(addr) = self.cache.lock().get(&store_id) {
            return Ok(addr.clone());
        }
        let info = self.pd.get_store(store_id).await?;
        let addr = info.store.map(|s| s.address).unwrap_or_default();
        if addr.is_empty() {
            return Err(PdError::StoreNotFound(format!(
                "store {store_id} has no address"
            )));
        }
        self.cache.lock().insert(store_id, addr.clone());
        Ok(addr)
    }

    /// Forgets `store_id`'s address.
    pub fn forget(&self, store_id: u64) {
        self.cache.lock().remove(&store_id);
    }
}
