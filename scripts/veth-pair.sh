# Sourced by the scripts that send frames across a veth pair (live demo, live-capture and generator benchmarks).
# veth_pair NS_A NS_B IF_A IF_B: two network namespaces joined by one veth pair with one rx and one tx queue a
# side (one AF_XDP queue to bind), both ends up. veth_pair_delete NS_A NS_B: removes them (the veth goes with
# them); quiet when already gone, so a cleanup trap may call it at any point.
veth_pair() {
  ip netns add "$1"
  ip netns add "$2"
  ip link add "$3" numrxqueues 1 numtxqueues 1 netns "$1" type veth peer name "$4" numrxqueues 1 numtxqueues 1 netns "$2"
  ip -n "$1" link set "$3" up
  ip -n "$2" link set "$4" up
}

veth_pair_delete() {
  ip netns del "$1" 2>/dev/null || true
  ip netns del "$2" 2>/dev/null || true
}
