/* The reference the udp backend is measured against: flannel's udp data path as a small
 * C program. One thread, poll() on the TUN device and the UDP socket, one read()/sendto()
 * or recv()/write() per packet, TTL decremented each way. Not part of coreos; built by
 * contrib/bench/flannel-overlay.sh.
 *
 *   udp-forwarder TUN-NAME LOCAL-IP PORT SUBNET/LEN=PEER-IP...
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct peer { uint32_t network, mask; struct sockaddr_in address; };

static int decrement_ttl(unsigned char *packet) {
    if (packet[8] <= 1) return 0;
    packet[8]--;
    uint32_t sum = ((uint32_t)packet[10] << 8 | packet[11]) + 0x0100;
    sum = (sum & 0xffff) + (sum >> 16);
    packet[10] = sum >> 8;
    packet[11] = sum & 0xff;
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s TUN LOCAL-IP PORT SUBNET/LEN=PEER...\n", argv[0]); return 2; }
    int tun = open("/dev/net/tun", O_RDWR);
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(request.ifr_name, argv[1], IFNAMSIZ - 1);
    if (tun < 0 || ioctl(tun, TUNSETIFF, &request) < 0) { perror("tun"); return 1; }
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
    inet_pton(AF_INET, argv[2], &local.sin_addr);
    if (bind(sock, (struct sockaddr *)&local, sizeof local) < 0) { perror("bind"); return 1; }
    int count = argc - 4;
    struct peer *peers = calloc(count, sizeof *peers);
    for (int i = 0; i < count; i++) {
        char text[64], *slash, *equals;
        snprintf(text, sizeof text, "%s", argv[4 + i]);
        equals = strchr(text, '=');
        slash = strchr(text, '/');
        if (!equals || !slash) { fprintf(stderr, "bad peer %s\n", argv[4 + i]); return 2; }
        *equals = 0;
        *slash = 0;
        struct in_addr network;
        inet_pton(AF_INET, text, &network);
        int length = atoi(slash + 1);
        peers[i].mask = length ? htonl(~0u << (32 - length)) : 0;
        peers[i].network = network.s_addr & peers[i].mask;
        peers[i].address.sin_family = AF_INET;
        peers[i].address.sin_port = htons(atoi(argv[3]));
        inet_pton(AF_INET, equals + 1, &peers[i].address.sin_addr);
    }
    unsigned char buffer[65536];
    struct pollfd fds[2] = { { .fd = tun, .events = POLLIN }, { .fd = sock, .events = POLLIN } };
    for (;;) {
        if (poll(fds, 2, -1) < 0) continue;
        if (fds[0].revents & POLLIN) {
            ssize_t n = read(tun, buffer, sizeof buffer);
            if (n >= 20 && decrement_ttl(buffer)) {
                uint32_t destination;
                memcpy(&destination, buffer + 16, 4);
                for (int i = 0; i < count; i++) {
                    if ((destination & peers[i].mask) == peers[i].network) {
                        sendto(sock, buffer, n, 0, (struct sockaddr *)&peers[i].address, sizeof peers[i].address);
                        break;
                    }
                }
            }
        }
        if (fds[1].revents & POLLIN) {
            ssize_t n = recv(sock, buffer, sizeof buffer, 0);
            if (n >= 20 && decrement_ttl(buffer)) write(tun, buffer, n);
        }
    }
}
