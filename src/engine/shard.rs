//! Deterministic partition of a batch's subjects across array tasks (SLURM, Kubernetes).

use std::fmt;

/// Shard `index` of `count` (0-based): it takes the subjects at positions `index`,
/// `index + count`, ... of the label-sorted subject list, so shards differ in size by at
/// most one subject and every subject lands in exactly one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based shard number.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Parse `I/N` (0-based `I < N`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("shard '{text}' is not of the form I/N"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index '{i}' is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count '{n}' is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= I < N"));
        }
        Ok(Self { index, count })
    }

    /// The shard an array task is, from its environment: `SLURM_ARRAY_TASK_ID` (relative to
    /// `SLURM_ARRAY_TASK_MIN`) of `SLURM_ARRAY_TASK_COUNT`, or Kubernetes'
    /// `JOB_COMPLETION_INDEX` of `shard_count` (Kubernetes does not expose the count).
    pub fn from_env(
        shard_count: Option<usize>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, String> {
        let number = |key: &str| -> Result<Option<usize>, String> {
            env(key)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| format!("{key}='{v}' is not a number"))
                })
                .transpose()
        };
        if let (Some(id), Some(count)) = (
            number("SLURM_ARRAY_TASK_ID")?,
            number("SLURM_ARRAY_TASK_COUNT")?,
        ) {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let index = id
                .checked_sub(min)
                .ok_or("SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN")?;
            return Self::parse(&format!("{index}/{count}")).map(Some);
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = shard_count
                .ok_or("JOB_COMPLETION_INDEX is set: give --shard-count (the Job's completions)")?;
            return Self::parse(&format!("{index}/{count}")).map(Some);
        }
        Ok(None)
    }

    /// Whether the subject at `position` in the sorted list belongs to this shard.
    pub fn owns(&self, position: usize) -> bool {
        position % self.count == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn partitions_every_subject_exactly_once() {
        for count in 1..6 {
            let shards: Vec<Shard> = (0..count).map(|i| Shard { index: i, count }).collect();
            for position in 0..17 {
                assert_eq!(shards.iter().filter(|s| s.owns(position)).count(), 1);
            }
        }
        assert_eq!(Shard::parse("2/3").unwrap().to_string(), "2/3");
        assert!(
            Shard::parse("3/3").is_err()
                && Shard::parse("1").is_err()
                && Shard::parse("0/0").is_err()
        );
    }

    #[test]
    fn reads_slurm_and_kubernetes_environments() {
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert_eq!(
            Shard::from_env(None, slurm).unwrap(),
            Some(Shard { index: 1, count: 3 })
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2")]);
        assert_eq!(
            Shard::from_env(Some(4), &k8s).unwrap(),
            Some(Shard { index: 2, count: 4 })
        );
        assert!(
            Shard::from_env(None, &k8s).is_err(),
            "Kubernetes needs --shard-count"
        );
        assert_eq!(Shard::from_env(None, env(&[])).unwrap(), None);
    }
}
