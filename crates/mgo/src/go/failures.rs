//! Which test a line of `go test`'s output says failed: `--- FAIL: Name
//! (0.00s)` (indented for a subtest), or with `-json` an object whose
//! `"Action"` is `"fail"` and that names a `"Test"`. Levels that disagree
//! about a test are told from these.

/// The test `line` reports as failed, if it does.
pub fn failed_test(line: &[u8], json: bool) -> Option<String> {
    if json {
        let value: serde_json::Value = serde_json::from_slice(line).ok()?;
        if value.get("Action")?.as_str()? != "fail" {
            return None;
        }
        return Some(value.get("Test")?.as_str()?.to_owned());
    }
    let text = std::str::from_utf8(line).ok()?;
    let rest = text.trim_start().strip_prefix("--- FAIL: ")?;
    let name = rest.split_whitespace().next()?;
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_read_from_text_and_json() {
        assert_eq!(
            failed_test(b"--- FAIL: TestMulAdd (0.00s)\n", false).as_deref(),
            Some("TestMulAdd")
        );
        assert_eq!(
            failed_test(b"    --- FAIL: TestA/sub_1 (0.00s)\n", false).as_deref(),
            Some("TestA/sub_1")
        );
        assert_eq!(failed_test(b"--- PASS: TestA (0.00s)\n", false), None);
        assert_eq!(failed_test(b"FAIL\n", false), None);
        assert_eq!(
            failed_test(
                br#"{"Time":"x","Action":"fail","Package":"p","Test":"TestB","Elapsed":0}"#,
                true
            )
            .as_deref(),
            Some("TestB")
        );
        // The package's own failure names no test.
        assert_eq!(
            failed_test(br#"{"Action":"fail","Package":"p"}"#, true),
            None
        );
        assert_eq!(
            failed_test(
                br#"{"Action":"output","Output":"--- FAIL: TestC (0.00s)\n"}"#,
                true
            ),
            None
        );
    }
}
