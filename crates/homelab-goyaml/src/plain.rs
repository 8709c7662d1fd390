//! go-yaml's checks on plain scalars that do not depend on a value model: the YAML 1.1 booleans and base-60
//! floats it quotes on output so older readers do not retype them.

/// YAML 1.1 booleans (`yes`, `off`, …) that go-yaml quotes on output for compatibility.
pub fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// go-yaml's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
pub fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let group = &b[start..i];
        let sexagesimal = match group.len() {
            1 => true,
            2 => group[0] <= b'5',
            _ => false,
        };
        if !sexagesimal {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base60_floats_and_old_bools_are_recognised() {
        for s in ["12:30", "-1:05", "190:20:30.15", "1_0:5"] {
            assert!(is_base60_float(s), "{s}");
        }
        for s in ["12:60", "12:", ":30", "x:30", "12:30:"] {
            assert!(!is_base60_float(s), "{s}");
        }
        assert!(is_old_bool("Off") && !is_old_bool("true") && !is_old_bool("oFF"));
    }
}
