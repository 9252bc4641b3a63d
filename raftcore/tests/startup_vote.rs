//! A peer ignores vote requests for an election timeout after it starts
//! (it may have promised a lease before a restart), unless the host says
//! it is pristine: then it votes at once.

use raftcore::{ConfState, Config, MemStorage, Message, MessageType, RawNode};

fn node() -> RawNode<MemStorage> {
    let storage = MemStorage::with_conf_state(ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    });
    let config = Config {
        lease_ticks: 7,
        pre_vote: true,
        check_quorum: true,
        ..Config::new(2)
    };
    RawNode::new(&config, storage).expect("a valid node")
}

/// A pre-vote request from peer 1, and whether peer 2 answered it (with a
/// grant).
fn answers_pre_vote(n: &mut RawNode<MemStorage>) -> bool {
    n.step(Message {
        msg_type: MessageType::PreVote,
        from: 1,
        to: 2,
        term: 2,
        log_term: 1,
        index: 1,
        ..Default::default()
    })
    .expect("stepped");
    if !n.has_ready() {
        return false;
    }
    let rd = n.ready();
    let granted = rd
        .messages
        .iter()
        .chain(&rd.persisted_messages)
        .any(|m| m.msg_type == MessageType::PreVoteResponse && !m.reject);
    n.advance(rd);
    granted
}

#[test]
fn a_new_peer_ignores_votes_for_an_election_timeout() {
    let mut n = node();
    assert!(!answers_pre_vote(&mut n));
}

#[test]
fn a_pristine_peer_votes_at_once_when_the_host_says_so() {
    let mut n = node();
    n.waive_startup_vote_wait();
    assert!(answers_pre_vote(&mut n));
}

#[test]
fn a_peer_that_heard_a_leader_keeps_waiting() {
    let mut n = node();
    n.step(Message {
        msg_type: MessageType::Heartbeat,
        from: 3,
        to: 2,
        term: 2,
        ..Default::default()
    })
    .expect("stepped");
    if n.has_ready() {
        let rd = n.ready();
        n.advance(rd);
    }
    n.waive_startup_vote_wait();
    assert!(!answers_pre_vote(&mut n));
}
