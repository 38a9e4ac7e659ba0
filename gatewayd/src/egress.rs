//! PURE: which egress proxy each key leaves through (`upstream.proxies`). Rendezvous hashing:
//! a key takes the proxy with the highest score of (proxy, key id), so a key always leaves from
//! the same address, adding a proxy moves only the keys it now wins (about 1/n of them), and
//! removing one moves only its own keys. The hash is this module's (FNV-1a and a SplitMix64
//! finalizer), not the standard library's, so pinning survives restarts and upgrades.

/// FNV-1a over a proxy's URL: its identity in the hash.
pub fn seed(proxy: &str) -> u64 {
    proxy.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64's finalizer: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The index (into `seeds`, one per proxy) of the proxy key `key_id` leaves through; `None`
/// when there are no proxies.
pub fn pick(key_id: i64, seeds: &[u64]) -> Option<usize> {
    let key = mix(key_id as u64);
    (0..seeds.len()).max_by_key(|&i| (mix(seeds[i] ^ key), std::cmp::Reverse(i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assign(proxies: &[&str], keys: i64) -> Vec<usize> {
        let seeds: Vec<u64> = proxies.iter().map(|p| seed(p)).collect();
        (1..=keys).map(|k| pick(k, &seeds).unwrap()).collect()
    }

    #[test]
    fn keys_spread_evenly_and_stay_put() {
        let three = ["http://p1:3128", "http://p2:3128", "socks5://p3:1080"];
        let before = assign(&three, 3000);
        assert_eq!(before, assign(&three, 3000), "the same key, the same proxy, every time");
        for p in 0..3 {
            let n = before.iter().filter(|&&i| i == p).count();
            assert!((850..=1150).contains(&n), "proxy {p} holds {n} of 3000 keys");
        }
        assert_eq!(pick(1, &[]), None);
        // Fixed values (computed apart from this code): pinning must not change with a new build.
        assert_eq!(seed("http://p1:3128"), 0xe6f1_b28e_9dc9_5288);
        assert_eq!(before[..10], [1, 0, 0, 2, 1, 2, 1, 1, 0, 0]);
    }

    #[test]
    fn adding_a_proxy_moves_only_the_keys_it_takes_and_removing_one_only_its_own() {
        let three = ["http://p1:3128", "http://p2:3128", "http://p3:3128"];
        let four = ["http://p1:3128", "http://p2:3128", "http://p3:3128", "http://p4:3128"];
        let (before, after) = (assign(&three, 4000), assign(&four, 4000));
        let moved: Vec<usize> = (0..4000).filter(|&i| before[i] != after[i]).collect();
        assert!(moved.iter().all(|&i| after[i] == 3), "a key that moved went to the new proxy");
        assert!((800..=1200).contains(&moved.len()), "about a quarter moved: {}", moved.len());
        // Removing p2: only p2's keys move (p1 stays index 0, p3 becomes index 1).
        let without = assign(&["http://p1:3128", "http://p3:3128"], 4000);
        for i in 0..4000 {
            match before[i] {
                0 => assert_eq!(without[i], 0, "a key of p1 stays"),
                2 => assert_eq!(without[i], 1, "a key of p3 stays"),
                _ => {}
            }
        }
    }
}
