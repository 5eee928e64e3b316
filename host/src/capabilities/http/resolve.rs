//! Name resolution for outbound requests. The host resolves names itself,
//! checks every address, then connects to an address it checked, so a DNS
//! answer that changes between the check and the connection changes
//! nothing. The operator's table (`[outbound] resolve`) answers first, like
//! a hosts file; it is also how tests point a name at an address without
//! touching the network.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;

use crate::capabilities::kv::BoxFuture;

/// Addresses one name may resolve to, at most: an answer longer than this
/// is cut, never buffered whole.
const MAX_ADDRESSES: usize = 16;

/// Turns a host name into addresses.
pub trait Resolve: Send + Sync {
    /// The addresses of `name` (lower-case ASCII, no trailing dot).
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// The system resolver behind the operator's fixed table.
#[derive(Debug, Clone, Default)]
pub struct SystemResolver {
    table: HashMap<String, Vec<IpAddr>>,
}

impl SystemResolver {
    /// A resolver that answers the names of `table` itself.
    pub fn with_table(table: HashMap<String, Vec<IpAddr>>) -> Self {
        SystemResolver { table }
    }
}

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            if let Some(fixed) = self.table.get(name) {
                return Ok(fixed.clone());
            }
            let found = tokio::net::lookup_host((name, 0)).await?;
            Ok(found.map(|address| address.ip()).take(MAX_ADDRESSES).collect())
        })
    }
}
