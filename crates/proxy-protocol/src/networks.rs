//! The networks a header is accepted from (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`).

use std::net::IpAddr;

/// A list of address prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<(IpAddr, u8)>);

impl Networks {
    /// Parses each of `items` (`ADDR/BITS`, or an address alone for one host); the error
    /// names the item and what is wrong with it.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Networks, String> {
        items
            .iter()
            .map(|s| prefix(s.as_ref()))
            .collect::<Result<_, _>>()
            .map(Networks)
    }

    /// Whether `ip` is in one of the networks (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|&(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(&n.octets(), bits) == masked(&a.octets(), bits)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(&n.octets(), bits) == masked(&a.octets(), bits)
            }
            _ => false,
        })
    }

    /// Whether no network is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn masked<const N: usize>(octets: &[u8; N], bits: u8) -> [u8; N] {
    let mut out = *octets;
    for (i, b) in out.iter_mut().enumerate() {
        let keep = (usize::from(bits)).saturating_sub(i * 8).min(8);
        *b &= (0xff_u16 << (8 - keep)) as u8;
    }
    out
}

fn prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let (addr, bits) = s.split_once('/').unwrap_or((s, ""));
    let ip: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\": not an IP address or ADDR/BITS"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        "" => max,
        b => b
            .parse::<u8>()
            .ok()
            .filter(|&b| b <= max)
            .ok_or_else(|| format!("\"{s}\": the prefix length must be 0 to {max}"))?,
    };
    if masked_ip(ip, bits) != ip {
        return Err(format!(
            "\"{s}\": bits are set past the /{bits} prefix (did you mean {}/{bits}?)",
            masked_ip(ip, bits)
        ));
    }
    Ok((ip, bits))
}

fn masked_ip(ip: IpAddr, bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::from(masked(&a.octets(), bits)),
        IpAddr::V6(a) => IpAddr::from(masked(&a.octets(), bits)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_what_they_cover_and_nothing_else() {
        let n = Networks::parse(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "0.0.0.0/0"][..2])
            .unwrap();
        assert!(n.contains("10.200.1.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(n.contains("192.0.2.7".parse().unwrap()));
        assert!(!n.contains("192.0.2.8".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let v6 = Networks::parse(&["2001:db8::/32"]).unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        assert!(
            Networks::parse(&["0.0.0.0/0"])
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        let odd = Networks::parse(&["172.16.0.0/12"]).unwrap();
        assert!(odd.contains("172.31.255.255".parse().unwrap()));
        assert!(!odd.contains("172.32.0.0".parse().unwrap()));
    }

    #[test]
    fn mistakes_are_named() {
        for (bad, says) in [
            ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
            ("10.0.0.0/33", "0 to 32"),
            ("ten", "not an IP address"),
            ("::/129", "0 to 128"),
        ] {
            let e = Networks::parse(&[bad]).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
