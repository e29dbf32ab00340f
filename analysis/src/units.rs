//! How figures are shown: the unit an attribute is read in (from its key), and durations.

/// The unit an attribute's values are shown in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    /// Raw values are divided by this (`1e6` turns bytes into MB).
    pub scale: f64,
    /// `MB`, `Mvoxel`, ...; empty when the key names no unit.
    pub name: &'static str,
}

impl Unit {
    /// `value` in this unit.
    pub fn apply(self, value: f64) -> f64 {
        value / self.scale
    }

    /// The unit's name, or `fallback` (the key itself, say) when the key names none.
    pub fn name_or(self, fallback: &str) -> &str {
        if self.name.is_empty() {
            fallback
        } else {
            self.name
        }
    }
}

/// The unit of the attribute `key`: bytes as MB, voxel counts in millions, `_ms` and `_ml` as
/// they are; no unit (scale 1) otherwise.
pub fn unit_of(key: &str) -> Unit {
    const UNITS: [(&str, f64, &str); 7] = [
        ("_mb", 1.0, "MB"),
        ("_bytes", 1e6, "MB"),
        (".bytes_read", 1e6, "MB"),
        (".bytes_written", 1e6, "MB"),
        ("_ms", 1.0, "ms"),
        ("_ml", 1.0, "mL"),
        ("voxels", 1e6, "Mvoxel"),
    ];
    UNITS
        .iter()
        .find(|(suffix, ..)| key.ends_with(suffix))
        .map_or(
            Unit {
                scale: 1.0,
                name: "",
            },
            |&(_, scale, name)| Unit { scale, name },
        )
}

/// Milliseconds, readable: `412 ms`, `3.2 ms`, `1.84 s`.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_the_key() {
        assert_eq!(unit_of("file.size_mb").name, "MB");
        assert_eq!(unit_of("io.bytes_read").apply(2e6), 2.0);
        assert_eq!(unit_of("array.voxels").name, "Mvoxel");
        assert_eq!(
            unit_of("thread.count").name_or("thread.count"),
            "thread.count"
        );
        assert_eq!(unit_of("thread.count").apply(3.0), 3.0);
    }
}
