//! Scale-out on SLURM: array job scripts whose tasks each run one shard, and the merge of the
//! shards' run reports into one summary.

pub mod merge;
pub mod script;
