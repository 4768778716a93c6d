//! A state file from a damaged disk: parsing, the consistency check and
//! preparing a rerun never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut st) = serde_json::from_slice::<onramp::state::State>(data) {
        let _ = st.inconsistency(None);
        let _ = st.completed_through();
        let _ = st.unsettled().count();
        let _ = st.prepare_rerun();
        assert!(
            st.unsettled()
                .all(|s| s.status == onramp::state::Status::Pending)
        );
    }
});
