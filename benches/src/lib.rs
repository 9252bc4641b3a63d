//! Flotilla's benchmarks. Criterion micro benchmarks live in `benches/`;
//! the `flotilla-ycsb` load tool arrives with its own issue.
