#include "shim.h"

uint16_t rvs_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_rx_burst(port, queue, pkts, n); }

uint16_t rvs_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_tx_burst(port, queue, pkts, n); }

struct rte_mbuf *rvs_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
int rvs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **pkts, unsigned n)
{ return rte_pktmbuf_alloc_bulk(mp, pkts, n); }
void rvs_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
void rvs_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned n) { rte_pktmbuf_free_bulk(pkts, n); }
char *rvs_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *rvs_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *rvs_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int rvs_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
uint16_t rvs_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t rvs_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
int rvs_pktmbuf_is_contiguous(const struct rte_mbuf *m) { return rte_pktmbuf_is_contiguous(m); }
void rvs_pktmbuf_refcnt_update_bulk(struct rte_mbuf *const *pkts, unsigned n, int16_t v)
{ for (unsigned i = 0; i < n; i++) rte_mbuf_refcnt_update(pkts[i], v); }
uint16_t rvs_pktmbuf_refcnt_read(const struct rte_mbuf *m) { return rte_mbuf_refcnt_read(m); }
unsigned rvs_mempool_avail_count(const struct rte_mempool *mp) { return rte_mempool_avail_count(mp); }
unsigned rvs_mempool_in_use_count(const struct rte_mempool *mp) { return rte_mempool_in_use_count(mp); }

unsigned rvs_lcore_id(void) { return rte_lcore_id(); }
int rvs_errno(void) { return rte_errno; }
uint64_t rvs_rdtsc(void) { return rte_rdtsc(); }
uint64_t rvs_tsc_hz(void) { return rte_get_tsc_hz(); }
void rvs_prefetch0(const void *p) { rte_prefetch0(p); }
void rvs_pause(void) { rte_pause(); }

uint32_t rvs_softrss(uint32_t *tuple, uint32_t len_words, const uint8_t *key)
{ return rte_softrss(tuple, len_words, key); }

unsigned rvs_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n)
{ return rte_ring_enqueue_burst(r, objs, n, NULL); }
unsigned rvs_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n)
{ return rte_ring_dequeue_burst(r, objs, n, NULL); }
unsigned rvs_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }

uint64_t rvs_rss_ip(void) { return RTE_ETH_RSS_IP; }
uint64_t rvs_rss_tcp(void) { return RTE_ETH_RSS_TCP; }
uint64_t rvs_rss_udp(void) { return RTE_ETH_RSS_UDP; }
uint64_t rvs_rss_l3_src_only(void) { return RTE_ETH_RSS_L3_SRC_ONLY; }
uint64_t rvs_rss_l3_dst_only(void) { return RTE_ETH_RSS_L3_DST_ONLY; }
uint64_t rvs_rss_l4_src_only(void) { return RTE_ETH_RSS_L4_SRC_ONLY; }
uint64_t rvs_rss_l4_dst_only(void) { return RTE_ETH_RSS_L4_DST_ONLY; }
uint64_t rvs_tx_offload_mbuf_fast_free(void) { return RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE; }
uint16_t rvs_pktmbuf_headroom_default(void) { return RTE_PKTMBUF_HEADROOM; }
const char *rvs_version(void) { return rte_version(); }
