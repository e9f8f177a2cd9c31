//! A policy: rules in order, indexed so the first match is found without scanning them all.

use crate::error::PolicyError;
use crate::profile::{Env, Profile};
use crate::rule::{Rule, Settings, SniMatch};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Rules in order; the first that matches a connection decides.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
    exact: HashMap<Box<str>, Vec<u32>>,
    wildcard: HashMap<Box<str>, Vec<u32>>,
    any: Vec<u32>,
    profiles: usize,
    tunnels: bool,
}

/// Longest server name looked up without allocating (DNS names are at most 253 bytes).
const MAX_NAME: usize = 255;

impl Policy {
    /// Indexes `rules` and builds one OpenSSL context per distinct settings. An invalid setting
    /// is an error naming the rule's file and line.
    pub fn build(rules: Vec<Rule>, env: &Env) -> Result<Policy, PolicyError> {
        let mut rules = rules;
        let mut profiles: HashMap<Settings, Arc<Profile>> = HashMap::new();
        for r in &mut rules {
            let p = match profiles.get(&r.settings) {
                Some(p) => Arc::clone(p),
                None => {
                    let p = Arc::new(Profile::build(&r.settings, env).map_err(|message| {
                        PolicyError::Rule {
                            path: r.origin.0.clone(),
                            line: r.origin.1,
                            message,
                        }
                    })?);
                    profiles.insert(r.settings.clone(), Arc::clone(&p));
                    p
                }
            };
            r.profile = Some(p);
        }
        let mut exact: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        let mut wildcard: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        let mut any = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let i = i as u32;
            match &r.sni {
                SniMatch::Exact(n) => exact.entry(n.as_str().into()).or_default().push(i),
                SniMatch::Wildcard(d) => wildcard.entry(d.as_str().into()).or_default().push(i),
                SniMatch::Any => any.push(i),
            }
        }
        Ok(Policy {
            exact,
            wildcard,
            any,
            profiles: profiles.len(),
            tunnels: rules.iter().any(|r| r.tunnel.is_some()),
            rules,
        })
    }

    /// The rules, in the order they are matched.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule passes connections through untouched (they must be routed before TLS).
    /// Decided at build: servers ask for every connection.
    pub fn has_tunnels(&self) -> bool {
        self.tunnels
    }

    /// OpenSSL contexts built (one per distinct settings).
    pub fn profiles(&self) -> usize {
        self.profiles
    }

    /// The first rule matching a connection for `sni` (any case) on `local`. Without a server
    /// name only `*` rules match.
    pub fn find(&self, sni: Option<&str>, local: Option<SocketAddr>) -> Option<&Rule> {
        self.find_index(sni, local).map(|i| &self.rules[i])
    }

    /// As [`Policy::find`], the rule's index.
    pub fn find_index(&self, sni: Option<&str>, local: Option<SocketAddr>) -> Option<usize> {
        let fits = |i: &u32| {
            let r = &self.rules[*i as usize];
            r.local.is_none_or(|l| l.matches(local))
        };
        let first = |list: Option<&Vec<u32>>| list.and_then(|l| l.iter().copied().find(fits));
        let mut best = first(Some(&self.any));
        if let Some(name) = sni.filter(|n| !n.is_empty() && n.len() <= MAX_NAME) {
            let mut buf = [0u8; MAX_NAME];
            let lower = &mut buf[..name.len()];
            lower.copy_from_slice(name.as_bytes());
            lower.make_ascii_lowercase();
            // ASCII lowercasing keeps UTF-8 valid.
            let lower = std::str::from_utf8(lower).unwrap_or(name);
            let mut consider = |c: Option<u32>| {
                if let Some(c) = c {
                    best = Some(best.map_or(c, |b| b.min(c)));
                }
            };
            consider(first(self.exact.get(lower)));
            if let Some((_, domain)) = lower.split_once('.') {
                consider(first(self.wildcard.get(domain)));
            }
        }
        best.map(|i| i as usize)
    }
}
