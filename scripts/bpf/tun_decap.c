// tc-BPF decapsulator for rvs's TUN-mode test real servers: this kernel has
// no ipip/sit/gre/fou modules, so the real server's interface strips the
// outer header itself. Handles IPv4 outer headers carrying IPv4 (IPIP, 4),
// IPv6 (41), GRE (47, 4 or 8 bytes, no key/seq) and GUE (UDP to port
// GUE_PORT with a 4-byte header), and IPv6 outer headers carrying IPv6 (41).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define GUE_PORT 6080

static __always_inline int strip(struct __sk_buff *skb, int len, __u16 outer, __u16 inner)
{
    if (outer == ETH_P_IP && inner == ETH_P_IPV6) {
        // skb->protocol must become IPv6; change_proto does that but also
        // grows the header by 20 bytes (IPv6 vs IPv4), so strip 20 more.
        if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0))
            return TC_ACT_SHOT;
        len += 20;
    } else if (outer != inner) {
        return TC_ACT_OK;
    }
    // Shrink right after the Ethernet header: removes the outer headers.
    if (bpf_skb_adjust_room(skb, -len, BPF_ADJ_ROOM_MAC, 0))
        return TC_ACT_SHOT;
    __be16 p = bpf_htons(inner);
    if (bpf_skb_store_bytes(skb, 12, &p, 2, 0))
        return TC_ACT_SHOT;
    return TC_ACT_OK;
}

SEC("tc")
int tun_decap(struct __sk_buff *skb)
{
    // Frames sent through AF_PACKET (rvsd's net_af_packet) arrive with only
    // the Ethernet and IP headers in the linear area; make every header this
    // program reads (at most 14 + 20 + 8 + 4, or 14 + 40) directly readable.
    __u32 need = skb->len < 64 ? skb->len : 64;
    if (bpf_skb_pull_data(skb, need))
        return TC_ACT_OK;
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return TC_ACT_OK;
    if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > end)
            return TC_ACT_OK;
        if (ip6->nexthdr == IPPROTO_IPV6)
            return strip(skb, sizeof(*ip6), ETH_P_IPV6, ETH_P_IPV6);
        return TC_ACT_OK;
    }
    if (eth->h_proto != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end || ip->ihl != 5)
        return TC_ACT_OK;
    if (ip->protocol == IPPROTO_IPIP)
        return strip(skb, 20, ETH_P_IP, ETH_P_IP);
    if (ip->protocol == IPPROTO_IPV6)
        return strip(skb, 20, ETH_P_IP, ETH_P_IPV6);
    if (ip->protocol == IPPROTO_GRE) {
        __u8 *g = (void *)(ip + 1);
        if ((void *)(g + 4) > end)
            return TC_ACT_OK;
        __u16 proto = (g[2] << 8) | g[3];
        int glen = (g[0] & 0x80) ? 8 : 4; // checksum present
        if (g[0] & 0x30)                  // key or sequence: not ours
            return TC_ACT_OK;
        return strip(skb, 20 + glen, ETH_P_IP, proto);
    }
    if (ip->protocol == IPPROTO_UDP) {
        struct udphdr *u = (void *)(ip + 1);
        if ((void *)(u + 1) > end || u->dest != bpf_htons(GUE_PORT))
            return TC_ACT_OK;
        __u8 *gue = (void *)(u + 1);
        if ((void *)(gue + 4) > end)
            return TC_ACT_OK;
        __u16 proto = gue[1] == IPPROTO_IPV6 ? ETH_P_IPV6 : ETH_P_IP;
        return strip(skb, 20 + 8 + 4, ETH_P_IP, proto);
    }
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
