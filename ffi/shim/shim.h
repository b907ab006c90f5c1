/* rvs dpdk-sys shim: DPDK's static-inline functions and macros as real,
 * linkable symbols, so that Rust can call them. Keep this file small: only
 * what bindgen cannot reach. */
#ifndef RVS_DPDK_SHIM_H
#define RVS_DPDK_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_thash.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_version.h>
#include <rte_eth_ring.h>

uint16_t rvs_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t rvs_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

struct rte_mbuf *rvs_pktmbuf_alloc(struct rte_mempool *mp);
int rvs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **pkts, unsigned n);
void rvs_pktmbuf_free(struct rte_mbuf *m);
void rvs_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned n);
char *rvs_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *rvs_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *rvs_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int rvs_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t rvs_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t rvs_pktmbuf_tailroom(const struct rte_mbuf *m);
int rvs_pktmbuf_is_contiguous(const struct rte_mbuf *m);
/* Add v (may be negative) to the reference count of each of the n mbufs
 * (first segments only): a transmit's free then returns a shared mbuf to
 * its pool only when the last reference goes. */
void rvs_pktmbuf_refcnt_update_bulk(struct rte_mbuf *const *pkts, unsigned n, int16_t v);
uint16_t rvs_pktmbuf_refcnt_read(const struct rte_mbuf *m);
unsigned rvs_mempool_avail_count(const struct rte_mempool *mp);
unsigned rvs_mempool_in_use_count(const struct rte_mempool *mp);

unsigned rvs_lcore_id(void);
int rvs_errno(void);
uint64_t rvs_rdtsc(void);
uint64_t rvs_tsc_hz(void);
void rvs_prefetch0(const void *p);
void rvs_pause(void);

/* Software Toeplitz over a tuple of host-order 32-bit words, as DPDK's own
 * rte_softrss: used to cross-check rvs's pure-Rust Toeplitz. */
uint32_t rvs_softrss(uint32_t *tuple, uint32_t len_words, const uint8_t *key);

unsigned rvs_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n);
unsigned rvs_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned rvs_ring_count(const struct rte_ring *r);

/* RSS hash-type bits (macros built with RTE_BIT64, which bindgen can't evaluate). */
uint64_t rvs_rss_ip(void);
uint64_t rvs_rss_tcp(void);
uint64_t rvs_rss_udp(void);
uint64_t rvs_rss_l3_src_only(void);
uint64_t rvs_rss_l3_dst_only(void);
uint64_t rvs_rss_l4_src_only(void);
uint64_t rvs_rss_l4_dst_only(void);
uint64_t rvs_tx_offload_mbuf_fast_free(void);
uint16_t rvs_pktmbuf_headroom_default(void);
const char *rvs_version(void);

#endif
