//! Network partitions between stores, as cuts of their Raft links: each
//! store is told (through its test-only `PUT /debug/links`) which stores it
//! must not send to and which it must not hear from. Clients and PD still
//! reach every store.

use std::collections::BTreeSet;

use flotilla::playground::Playground;
use flotilla_checker::generate::Rng;

/// The shape of a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    /// One store cut off from all others, both ways.
    Isolate(usize),
    /// The stores in two groups that cannot talk to each other.
    Halves(BTreeSet<usize>),
    /// Two groups cut from each other, and one store (the bridge) that
    /// still talks to both.
    Bridge {
        /// The store in both.
        bridge: usize,
        /// One group (the rest, minus the bridge, is the other).
        side: BTreeSet<usize>,
    },
    /// Nobody hears this store; it still hears everyone.
    Mute(usize),
}

/// What one store must drop: to whom it does not send, from whom it does
/// not hear (store indices).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cut {
    /// Stores this one does not send to.
    pub drop_to: BTreeSet<usize>,
    /// Stores this one does not hear.
    pub drop_from: BTreeSet<usize>,
}

impl Topology {
    /// Random halves of `n` stores (the smaller half first).
    pub fn halves(rng: &mut Rng, n: usize) -> Topology {
        let order = shuffled(rng, n);
        Topology::Halves(order[..n / 2].iter().copied().collect())
    }

    /// A random bridge over `n ≥ 3` stores.
    pub fn bridge(rng: &mut Rng, n: usize) -> Topology {
        let order = shuffled(rng, n);
        let side = order[1..1 + (n - 1) / 2].iter().copied().collect();
        Topology::Bridge {
            bridge: order[0],
            side,
        }
    }

    /// Each of `n` stores' cut.
    pub fn cuts(&self, n: usize) -> Vec<Cut> {
        let mut cuts = vec![Cut::default(); n];
        let mut sever = |a: usize, b: usize| {
            cuts[a].drop_to.insert(b);
            cuts[a].drop_from.insert(b);
            cuts[b].drop_to.insert(a);
            cuts[b].drop_from.insert(a);
        };
        match self {
            Topology::Isolate(i) => (0..n).filter(|j| j != i).for_each(|j| sever(*i, j)),
            Topology::Halves(side) => {
                for a in side {
                    (0..n)
                        .filter(|b| !side.contains(b))
                        .for_each(|b| sever(*a, b));
                }
            }
            Topology::Bridge { bridge, side } => {
                for a in side {
                    (0..n)
                        .filter(|b| b != bridge && !side.contains(b))
                        .for_each(|b| sever(*a, b));
                }
            }
            Topology::Mute(i) => {
                for (j, cut) in cuts.iter_mut().enumerate() {
                    if j != *i {
                        cut.drop_from.insert(*i);
                    }
                }
            }
        }
        cuts
    }

    /// For the fault log: `store-1 | store-0 store-2`.
    pub fn describe(&self) -> String {
        let names = |s: &mut dyn Iterator<Item = usize>| {
            s.map(|i| format!("store-{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            Topology::Isolate(i) => format!("store-{i} isolated"),
            Topology::Halves(side) => format!("{} | the rest", names(&mut side.iter().copied())),
            Topology::Bridge { bridge, side } => {
                format!(
                    "{} | the rest, bridged by store-{bridge}",
                    names(&mut side.iter().copied())
                )
            }
            Topology::Mute(i) => format!("store-{i} unheard"),
        }
    }
}

fn shuffled(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    order
}

/// Installs `topology` on every store.
pub async fn apply(cluster: &Playground, topology: &Topology) -> anyhow::Result<()> {
    let stores = &cluster.config().stores;
    let mut ids = Vec::new();
    for s in stores {
        let status = flotilla::http::get(&s.status_addr(), "/status").await?;
        let v: serde_json::Value = serde_json::from_str(&status)?;
        let id = v["store_id"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("no store_id in {status}"))?;
        ids.push(id);
    }
    for (s, cut) in stores.iter().zip(topology.cuts(stores.len())) {
        let to: Vec<u64> = cut.drop_to.iter().map(|&i| ids[i]).collect();
        let from: Vec<u64> = cut.drop_from.iter().map(|&i| ids[i]).collect();
        let links = serde_json::json!({ "drop_to": to, "drop_from": from });
        flotilla::http::put(&s.status_addr(), "/debug/links", &links.to_string()).await?;
    }
    Ok(())
}

/// Removes every cut.
pub async fn heal(cluster: &Playground) {
    for s in &cluster.config().stores {
        if let Err(e) = flotilla::http::delete(&s.status_addr(), "/debug/links").await {
            eprintln!("flotilla-jepsen: healing links: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[usize]) -> BTreeSet<usize> {
        items.iter().copied().collect()
    }

    #[test]
    fn isolation_cuts_one_store_both_ways() {
        let cuts = Topology::Isolate(1).cuts(3);
        assert_eq!(cuts[1].drop_to, set(&[0, 2]));
        assert_eq!(cuts[1].drop_from, set(&[0, 2]));
        assert_eq!(cuts[0].drop_to, set(&[1]));
        assert_eq!(cuts[2].drop_from, set(&[1]));
    }

    #[test]
    fn halves_and_bridges_cut_across_only() {
        let cuts = Topology::Halves(set(&[0, 3])).cuts(5);
        assert_eq!(cuts[0].drop_to, set(&[1, 2, 4]));
        assert_eq!(cuts[1].drop_to, set(&[0, 3]));
        let cuts = Topology::Bridge {
            bridge: 2,
            side: set(&[0]),
        }
        .cuts(3);
        assert_eq!(cuts[0].drop_to, set(&[1]));
        assert_eq!(cuts[1].drop_from, set(&[0]));
        assert!(cuts[2].drop_to.is_empty() && cuts[2].drop_from.is_empty());
    }

    #[test]
    fn a_mute_store_hears_everyone() {
        let cuts = Topology::Mute(0).cuts(3);
        assert!(cuts[0].drop_to.is_empty() && cuts[0].drop_from.is_empty());
        assert_eq!(cuts[1].drop_from, set(&[0]));
        assert!(cuts[1].drop_to.is_empty());
    }

    #[test]
    fn random_topologies_are_well_formed() {
        let mut rng = Rng(3);
        for n in [3, 5] {
            let Topology::Halves(side) = Topology::halves(&mut rng, n) else {
                unreachable!()
            };
            assert_eq!(side.len(), n / 2);
            let Topology::Bridge { bridge, side } = Topology::bridge(&mut rng, n) else {
                unreachable!()
            };
            assert!(!side.contains(&bridge) && !side.is_empty());
        }
    }
}
