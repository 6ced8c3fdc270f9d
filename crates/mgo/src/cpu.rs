//! This machine's level, decided by the launcher's own code (the Go
//! runtime's check), and what keeps it from the next one.

use mgo_launcher::cpu::{self, Snapshot};

/// What this CPU answers.
pub struct Machine {
    /// The highest level it runs.
    pub level: u8,
    snapshot: Snapshot,
}

/// Reads this CPU.
pub fn this_machine() -> Machine {
    let snapshot = cpu::snapshot();
    Machine {
        level: cpu::level(&snapshot),
        snapshot,
    }
}

impl Machine {
    /// The features the level above this machine's needs and it lacks.
    pub fn missing_for_next(&self) -> Vec<&'static str> {
        if self.level >= 4 {
            return Vec::new();
        }
        cpu::missing(&self.snapshot, self.level + 1).collect()
    }
}

/// "; v4: no AVX512F, AVX512BW", or nothing for a v4 CPU.
pub fn why_not(machine: &Machine) -> String {
    let missing = machine.missing_for_next();
    if missing.is_empty() {
        String::new()
    } else {
        format!("; v{}: no {}", machine.level + 1, missing.join(", "))
    }
}
