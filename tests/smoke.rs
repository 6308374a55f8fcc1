mod common;
use common::*;

#[test]
fn data_round_trip_through_the_local_plugin() {
    let h = Harness::new(&[]);
    let key = h.data_key(0, 16384);
    let data = random_bytes(3 << 20, 7);
    assert_ok(&h.backup_data(&key, &data));
    let out = h.restore_data(&key);
    assert_ok(&out);
    assert_eq!(out.stdout, data);
}
