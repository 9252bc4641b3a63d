//! A leaderboard on ordered keys: each player's best score, the top N, and
//! a player's rank.
//!
//! Layout, under `lb/<board>/`:
//!
//! | key | value |
//! |---|---|
//! | `p/<player>` | the player's best score, 8 bytes big-endian: **the truth** |
//! | `s/<u64::MAX - score, 8 bytes big-endian><player>` | empty: **the index** |
//!
//! Big-endian makes byte order numeric order, and inverting the score
//! makes a forward scan of `s/` go from the best score down (ties by
//! player name), so the top N is one scan with a limit. The score field
//! has a fixed width, so any player name can follow it.
//!
//! A board keeps each player's *best* score, and that choice is what makes
//! the index safe to maintain without transactions:
//!
//! - A player's score only ever rises, so an index entry below the
//!   player's current score can never become valid again: deleting it is
//!   always safe, however late the delete arrives.
//! - Submitting a best score is idempotent, so a compare-and-swap whose
//!   outcome is unknown is settled by reading the player key back. (An
//!   "add points" board could not do that: another writer may already
//!   have built on our unknown write, so a re-read cannot tell whether it
//!   landed.)
//!
//! Run it against a cluster (`flotilla playground` starts a local one):
//!
//! ```text
//! cargo run -p flotilla-client --example leaderboard -- --pd 127.0.0.1:2379
//! ```

use std::collections::{BTreeMap, BTreeSet};

use flotilla_client::{key_after, Bytes, Config, Error, KeyRange, RawClient, Result};

/// Index entries read per request by [`Leaderboard::rank`].
const RANK_PAGE: u32 = 256;
/// Extra index entries [`Leaderboard::top`] reads beyond the N it wants,
/// so that a few stale entries do not cost another round trip.
const TOP_SLACK: u32 = 16;

/// A player and their best score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ranked {
    /// The player.
    pub player: String,
    /// Their best score.
    pub score: u64,
}

/// One board on a cluster.
#[derive(Clone, Debug)]
pub struct Leaderboard {
    client: RawClient,
    /// `lb/<board>/`.
    prefix: String,
}

impl Leaderboard {
    /// The board `board` (several boards can share a cluster).
    pub fn new(client: RawClient, board: &str) -> Leaderboard {
        Leaderboard {
            client,
            prefix: format!("lb/{board}/"),
        }
    }

    /// The player's best score, or `None` before their first submission.
    pub async fn best(&self, player: &str) -> Result<Option<u64>> {
        let value = self.client.get(self.player_key(player)).await?;
        value.map(|v| decode_score(&v)).transpose()
    }

    /// Records that `player` scored `score`; returns their best score
    /// after it (at least `score`).
    ///
    /// Three writes, because a raw store has no multi-key transactions:
    ///
    /// 1. put the new index entry;
    /// 2. compare-and-swap the player key from the score read to the new
    ///    one (read again and retry when another writer got there first);
    /// 3. delete the index entries below the player's score now.
    ///
    /// What a reader can see in between, and why each is harmless to
    /// [`top`](Self::top) and [`rank`](Self::rank), which treat the player
    /// key as the truth and the index only as a list of candidates:
    ///
    /// - after 1: an entry above the player's score. Readers skip it (it
    ///   is of an unfinished submission) and show the old score.
    /// - after 2: two entries, the old one below the player's score.
    ///   Readers take the player once, at the score the player key holds.
    /// - after 3: one entry again.
    ///
    /// So every player always has the entry of their current score: it
    /// is written before the player key moves to it, and deleted only once
    /// the player key is past it. What the ordering cannot give is a
    /// snapshot: a reader whose scan spans several requests can pass the
    /// new entry's place before step 1 and reach the old one's after step
    /// 3, and miss the player for that one read.
    ///
    /// A call that fails part-way leaves at most an extra entry, which
    /// readers skip or count once as above; since submitting is
    /// idempotent, the caller can simply call again.
    pub async fn submit(&self, player: &str, score: u64) -> Result<u64> {
        let key = self.player_key(player);
        let mut current = self.best(player).await?;
        let mut indexed = false;
        // Scores the player key held when we tried to swap it: their
        // entries are stale once the player's score is past them.
        let mut replaced = Vec::new();
        loop {
            if let Some(best) = current.filter(|&best| best >= score) {
                let ours = indexed.then_some(score);
                self.drop_stale(player, best, replaced.into_iter().chain(ours))
                    .await?;
                return Ok(best);
            }
            if !indexed {
                let entry = self.index_key(score, player);
                self.client.put(entry, Vec::new()).await?;
                indexed = true;
            }
            replaced.extend(current);
            let expected = current.map(u64::to_be_bytes);
            let swap = self
                .client
                .compare_and_swap(key.clone(), expected, score.to_be_bytes())
                .await;
            current = match swap {
                Ok((_, true)) => Some(score),
                Ok((previous, false)) => previous.map(|v| decode_score(&v)).transpose()?,
                // Landed or not (or not yet)? The player key says: if it
                // holds our score or better, the submission is on the
                // board; if not, a late landing of our swap can only take
                // the key to `score`, so swapping again is safe.
                Err(e) if e.is_undetermined() => self.best(player).await?,
                Err(e) => return Err(e),
            };
        }
    }

    /// Deletes the player's index entries for `scores` below `best`.
    async fn drop_stale(
        &self,
        player: &str,
        best: u64,
        scores: impl Iterator<Item = u64>,
    ) -> Result<()> {
        let stale: Vec<Vec<u8>> = scores
            .filter(|&s| s < best)
            .map(|s| self.index_key(s, player))
            .collect();
        self.client.batch_delete(stale).await
    }

    /// The `n` best players, best first (ties by name).
    ///
    /// Exact when no submission runs concurrently. It is not a snapshot:
    /// the index pages and the player keys are read at different times,
    /// so a player raised meanwhile may show their old or their new score
    /// (or, when the scan takes several requests, be missed; see
    /// [`submit`](Self::submit)). No player appears twice, and every score
    /// shown was the player's best when read.
    pub async fn top(&self, n: usize) -> Result<Vec<Ranked>> {
        let page = u32::try_from(n)
            .unwrap_or(u32::MAX)
            .saturating_add(TOP_SLACK);
        let KeyRange {
            start: mut from,
            end,
        } = self.index_range();
        let mut found: BTreeMap<String, u64> = BTreeMap::new();
        while found.len() < n {
            let keys = self
                .client
                .scan_keys(from.clone()..end.clone(), page)
                .await?;
            let Some(last) = keys.last() else { break };
            from = key_after(last);
            for (player, score) in self.confirm(&keys).await? {
                let best = found.entry(player).or_default();
                *best = (*best).max(score);
            }
            if keys.len() < page as usize {
                break;
            }
        }
        let mut ranked: Vec<Ranked> = found
            .into_iter()
            .map(|(player, score)| Ranked { player, score })
            .collect();
        ranked.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.player.cmp(&b.player)));
        ranked.truncate(n);
        Ok(ranked)
    }

    /// The player's rank: 1 + the number of players with a better score
    /// (tied players share a rank), or `None` for an unknown player.
    ///
    /// Counting reads every index entry above the player, so it costs
    /// O(rank): fine for a demo. A large board would keep counts per score
    /// bucket (or sample) instead.
    pub async fn rank(&self, player: &str) -> Result<Option<u64>> {
        let Some(score) = self.best(player).await? else {
            return Ok(None);
        };
        let KeyRange {
            start: mut from, ..
        } = self.index_range();
        // Entries before the first one of `score` have a higher score.
        let end = Bytes::from(self.index_key(score, ""));
        let mut better = BTreeSet::new();
        while from < end {
            let keys = self
                .client
                .scan_keys(from.clone()..end.clone(), RANK_PAGE)
                .await?;
            let Some(last) = keys.last() else { break };
            from = key_after(last);
            let confirmed = self.confirm(&keys).await?;
            better.extend(
                confirmed
                    .into_iter()
                    .filter(|(_, s)| *s > score)
                    .map(|(p, _)| p),
            );
            if keys.len() < RANK_PAGE as usize {
                break;
            }
        }
        Ok(Some(better.len() as u64 + 1))
    }

    /// Checks index entries against the player keys: the players whose
    /// score is at or above their entry, with that score. An entry above
    /// the player's score is from an unfinished submission and skipped.
    async fn confirm(&self, keys: &[flotilla_client::Bytes]) -> Result<Vec<(String, u64)>> {
        let entries: Vec<(u64, String)> = keys.iter().filter_map(|k| self.parse_entry(k)).collect();
        let player_keys = entries.iter().map(|(_, p)| self.player_key(p));
        let values = self.client.batch_get(player_keys).await?;
        let mut confirmed = Vec::new();
        for ((indexed, player), value) in entries.into_iter().zip(values) {
            let Some(value) = value else { continue };
            let score = decode_score(&value)?;
            if score >= indexed {
                confirmed.push((player, score));
            }
        }
        Ok(confirmed)
    }

    /// Deletes the whole board. `delete_range` is not idempotent in
    /// general, but nothing writes to a board being removed, so retrying
    /// one whose outcome is unknown is safe here.
    pub async fn remove(&self) -> Result<()> {
        let KeyRange { start, end } = KeyRange::with_prefix(self.prefix.as_str());
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.client.delete_range(start.clone()..end.clone()).await {
                Err(e) if (e.is_undetermined() || e.is_retryable()) && attempts < 5 => {}
                result => return result,
            }
        }
    }

    fn player_key(&self, player: &str) -> Vec<u8> {
        format!("{}p/{player}", self.prefix).into_bytes()
    }

    fn index_key(&self, score: u64, player: &str) -> Vec<u8> {
        let mut key = format!("{}s/", self.prefix).into_bytes();
        key.extend_from_slice(&(u64::MAX - score).to_be_bytes());
        key.extend_from_slice(player.as_bytes());
        key
    }

    fn index_range(&self) -> KeyRange {
        KeyRange::with_prefix(format!("{}s/", self.prefix))
    }

    /// The score and player of an index key; `None` for a key this board
    /// did not write.
    fn parse_entry(&self, key: &[u8]) -> Option<(u64, String)> {
        let rest = key.strip_prefix(format!("{}s/", self.prefix).as_bytes())?;
        let (inverted, player) = rest.split_first_chunk::<8>()?;
        let player = std::str::from_utf8(player).ok()?;
        Some((u64::MAX - u64::from_be_bytes(*inverted), player.to_string()))
    }
}

/// A player key's value.
fn decode_score(value: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| {
        Error::Store(format!(
            "a player's score is {} bytes, not 8: not written by a leaderboard",
            value.len()
        ))
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Runs the leaderboard demo: scores in ordered keys, top-N and ranks by
/// scans.
#[derive(clap::Parser)]
struct Args {
    /// PD endpoint (`host:port`)
    #[arg(long, env = "FLOTILLA_PD", default_value = "127.0.0.1:2379")]
    pd: String,
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args = <Args as clap::Parser>::parse();
    demo(&args.pd).await
}

/// The demo: six players submit forty scores, four at a time; then the
/// top five and everyone's rank are printed and the board removed.
pub async fn demo(pd: &str) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let client = RawClient::connect([pd], Config::default()).await?;
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let board = Leaderboard::new(client, &format!("demo-{}", since_epoch.as_millis()));
    let players = ["ada", "grace", "edsger", "barbara", "leslie", "tony"];
    let submissions: Vec<(&str, u64)> = (0..40u64)
        .map(|i| (players[(i * 7 % 6) as usize], i * 7919 % 1000))
        .collect();
    for round in submissions.chunks(4) {
        let calls = round.iter().map(|&(player, score)| {
            let board = board.clone();
            tokio::spawn(async move { board.submit(player, score).await })
        });
        for call in calls.collect::<Vec<_>>() {
            call.await??;
        }
    }
    println!("top 5:");
    for (i, r) in board.top(5).await?.iter().enumerate() {
        println!("  {}. {} ({})", i + 1, r.player, r.score);
    }
    for player in players {
        let best = board.best(player).await?.unwrap_or_default();
        let rank = board.rank(player).await?.unwrap_or_default();
        println!("{player}: best {best}, rank {rank}");
    }
    board.remove().await?;
    Ok(())
}
