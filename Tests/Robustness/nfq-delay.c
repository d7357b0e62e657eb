/*
 * nfq-delay: delays and reorders packets on a kernel without tc netem.
 *
 *   nfq-delay QUEUE MIN_MS MAX_MS
 *
 * Takes the packets that an iptables rule sends to NFQUEUE number QUEUE and lets each
 * one go after its own random delay between MIN_MS and MAX_MS: packets overtake each
 * other whenever the spread is wider than their spacing. Only the verdict is delayed;
 * the packet stays in the kernel's queue (metadata copy mode). On SIGTERM/SIGINT every
 * held packet is accepted before exiting; with the rule's --queue-bypass, traffic flows
 * again the moment the helper is gone.
 *
 * Build: cc -O2 -o nfq-delay nfq-delay.c -lnetfilter_queue
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct held {
    uint64_t due_ns;
    uint32_t id;
};

static struct held *heap;
static size_t heap_count, heap_capacity;
static volatile sig_atomic_t stopping;
static long min_ms, max_ms;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void heap_push(struct held item) {
    if (heap_count == heap_capacity) {
        heap_capacity = heap_capacity ? heap_capacity * 2 : 1024;
        heap = realloc(heap, heap_capacity * sizeof *heap);
        if (!heap) { perror("nfq-delay: realloc"); exit(1); }
    }
    size_t i = heap_count++;
    while (i > 0 && heap[(i - 1) / 2].due_ns > item.due_ns) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = item;
}

static struct held heap_pop(void) {
    struct held top = heap[0], last = heap[--heap_count];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= heap_count) break;
        if (child + 1 < heap_count && heap[child + 1].due_ns < heap[child].due_ns) child++;
        if (heap[child].due_ns >= last.due_ns) break;
        heap[i] = heap[child];
        i = child;
    }
    if (heap_count) heap[i] = last;
    return top;
}

static int on_packet(struct nfq_q_handle *queue, struct nfgenmsg *message, struct nfq_data *data, void *context) {
    (void)queue; (void)message; (void)context;
    struct nfqnl_msg_packet_hdr *header = nfq_get_msg_packet_hdr(data);
    if (!header) return 0;
    long spread = max_ms - min_ms;
    long delay = min_ms + (spread > 0 ? random() % (spread + 1) : 0);
    heap_push((struct held){now_ns() + (uint64_t)delay * 1000000u, ntohl(header->packet_id)});
    return 0;
}

static void stop(int signal) { (void)signal; stopping = 1; }

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: nfq-delay QUEUE MIN_MS MAX_MS\n");
        return 2;
    }
    int queue_number = atoi(argv[1]);
    min_ms = atol(argv[2]);
    max_ms = atol(argv[3]);
    if (queue_number < 0 || queue_number > 65535 || min_ms < 0 || max_ms < min_ms) {
        fprintf(stderr, "nfq-delay: need 0 <= QUEUE <= 65535 and 0 <= MIN_MS <= MAX_MS\n");
        return 2;
    }
    srandom((unsigned)now_ns());
    struct nfq_handle *handle = nfq_open();
    if (!handle) { perror("nfq-delay: nfq_open"); return 1; }
    struct nfq_q_handle *queue = nfq_create_queue(handle, (uint16_t)queue_number, on_packet, NULL);
    if (!queue) { perror("nfq-delay: nfq_create_queue"); return 1; }
    if (nfq_set_mode(queue, NFQNL_COPY_META, 0) < 0) { perror("nfq-delay: nfq_set_mode"); return 1; }
    nfq_set_queue_maxlen(queue, 65536);
    struct sigaction action = {0};
    action.sa_handler = stop;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    int fd = nfq_fd(handle);
    char buffer[65536];
    fprintf(stderr, "nfq-delay: queue %d, %ld..%ld ms\n", queue_number, min_ms, max_ms);
    while (!stopping) {
        uint64_t now = now_ns();
        while (heap_count && heap[0].due_ns <= now) {
            struct held item = heap_pop();
            nfq_set_verdict(queue, item.id, NF_ACCEPT, 0, NULL);
        }
        int timeout = 100;
        if (heap_count) {
            uint64_t wait_ms = (heap[0].due_ns - now + 999999) / 1000000;
            timeout = wait_ms < 100 ? (int)wait_ms : 100;
        }
        struct pollfd poller = {.fd = fd, .events = POLLIN};
        int ready = poll(&poller, 1, timeout);
        if (ready < 0 && errno != EINTR) { perror("nfq-delay: poll"); break; }
        if (ready > 0) {
            ssize_t length = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
            if (length > 0) nfq_handle_packet(handle, buffer, (int)length);
            else if (length < 0 && errno == ENOBUFS) fprintf(stderr, "nfq-delay: the kernel dropped packets (ENOBUFS)\n");
        }
    }
    while (heap_count) nfq_set_verdict(queue, heap_pop().id, NF_ACCEPT, 0, NULL);
    nfq_destroy_queue(queue);
    nfq_close(handle);
    return 0;
}
