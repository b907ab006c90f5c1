// tc-BPF access port for rvs's VLAN test hosts: this kernel has no 802.1Q
// driver (and no act_vlan), so a host's interface tags and untags itself.
// Built with -DVID=N: for egress every frame gets a tag with VLAN id VID;
// built also with -DINGRESS: a frame tagged VID loses its tag, anything
// else (untagged, priority-tagged, another VLAN) is dropped, as a Linux
// VLAN device sees nothing but its own VLAN.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef VID
#error "build with -DVID=<vlan id>"
#endif

#ifndef INGRESS
SEC("tc")
int vlan_out(struct __sk_buff *skb)
{
    if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), VID))
        return TC_ACT_SHOT;
    return TC_ACT_OK;
}
#else
SEC("tc")
int vlan_in(struct __sk_buff *skb)
{
    // The kernel moves a received tag out of the frame into the skb before
    // tc's ingress hook runs.
    if (!skb->vlan_present || (skb->vlan_tci & 0x0fff) != VID ||
        skb->vlan_proto != bpf_htons(ETH_P_8021Q))
        return TC_ACT_SHOT;
    if (bpf_skb_vlan_pop(skb))
        return TC_ACT_SHOT;
    return TC_ACT_OK;
}
#endif

char _license[] SEC("license") = "GPL";
