//! Replays every input the fuzzers kept (`fuzz/corpus/<target>/`) through its target, so
//! what coverage-guided fuzzing explored on nightly stays checked on stable, in every test
//! run. A target with no corpus fails rather than passing vacuously.

use std::path::Path;

/// Removes the targets' scratch folder however the test ends.
struct RemoveScratch;

impl Drop for RemoveScratch {
    fn drop(&mut self) {
        fuzzing::remove_scratch();
    }
}

#[test]
fn every_kept_input_still_holds() {
    let _scratch = RemoveScratch;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, target) in fuzzing::TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable corpus folder").path())
            .filter(|path| path.is_file());
        let mut replayed = 0;
        for path in entries {
            let bytes = std::fs::read(&path).expect("a readable corpus file");
            target(&bytes);
            replayed += 1;
        }
        assert!(replayed >= 10, "{}: only {replayed} inputs", dir.display());
    }
}
