#define _GNU_SOURCE
#include "CLinux.h"

#include <errno.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// A request built in a fixed buffer: usable in the child between clone and exec, where
// nothing may allocate.
struct request {
    struct nlmsghdr header;
    char payload[1024];
};

static struct rtattr *attribute(struct nlmsghdr *message, unsigned short type, const void *data, size_t length) {
    struct rtattr *attr = (struct rtattr *)((char *)message + NLMSG_ALIGN(message->nlmsg_len));
    attr->rta_type = type;
    attr->rta_len = (unsigned short)RTA_LENGTH(length);
    if (length) memcpy(RTA_DATA(attr), data, length);
    message->nlmsg_len = NLMSG_ALIGN(message->nlmsg_len) + RTA_ALIGN(attr->rta_len);
    return attr;
}

static struct rtattr *nest_begin(struct nlmsghdr *message, unsigned short type) {
    return attribute(message, type, NULL, 0);
}

static void nest_end(struct nlmsghdr *message, struct rtattr *nest) {
    nest->rta_len = (unsigned short)((char *)message + message->nlmsg_len - (char *)nest);
}

// Sends one request and waits for its acknowledgement; 0 or -errno.
static int transact(struct nlmsghdr *message) {
    int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (sock < 0) return -errno;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    message->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    message->nlmsg_seq = 1;
    int result = 0;
    if (sendto(sock, message, message->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        result = -errno;
    } else {
        char reply[4096];
        ssize_t length = recv(sock, reply, sizeof reply, 0);
        if (length < 0) {
            result = -errno;
        } else {
            struct nlmsghdr *answer = (struct nlmsghdr *)reply;
            if (NLMSG_OK(answer, (unsigned)length) && answer->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *error = NLMSG_DATA(answer);
                result = error->error;
            }
        }
    }
    close(sock);
    return result;
}

static struct ifinfomsg *link_message(struct request *request, unsigned short type, unsigned short flags) {
    memset(request, 0, sizeof *request);
    request->header.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    request->header.nlmsg_type = type;
    request->header.nlmsg_flags = flags;
    struct ifinfomsg *info = NLMSG_DATA(&request->header);
    info->ifi_family = AF_UNSPEC;
    return info;
}

int coreos_netlink_create_bridge(const char *name, unsigned int mtu) {
    struct request request;
    link_message(&request, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    attribute(&request.header, IFLA_IFNAME, name, strlen(name) + 1);
    if (mtu) attribute(&request.header, IFLA_MTU, &mtu, sizeof mtu);
    struct rtattr *info = nest_begin(&request.header, IFLA_LINKINFO);
    attribute(&request.header, IFLA_INFO_KIND, "bridge", 6);
    nest_end(&request.header, info);
    int result = transact(&request.header);
    return result == -EEXIST ? 0 : result;
}

int coreos_netlink_create_veth(const char *name, const char *peer, int peer_pid, unsigned int mtu) {
    struct request request;
    link_message(&request, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    attribute(&request.header, IFLA_IFNAME, name, strlen(name) + 1);
    if (mtu) attribute(&request.header, IFLA_MTU, &mtu, sizeof mtu);
    struct rtattr *linkinfo = nest_begin(&request.header, IFLA_LINKINFO);
    attribute(&request.header, IFLA_INFO_KIND, "veth", 4);
    struct rtattr *data = nest_begin(&request.header, IFLA_INFO_DATA);
    struct rtattr *peer_info = nest_begin(&request.header, VETH_INFO_PEER);
    // The peer's attributes follow its own ifinfomsg.
    struct ifinfomsg peer_message = {.ifi_family = AF_UNSPEC};
    memcpy((char *)&request.header + request.header.nlmsg_len, &peer_message, sizeof peer_message);
    request.header.nlmsg_len += NLMSG_ALIGN(sizeof peer_message);
    attribute(&request.header, IFLA_IFNAME, peer, strlen(peer) + 1);
    if (mtu) attribute(&request.header, IFLA_MTU, &mtu, sizeof mtu);
    if (peer_pid > 0) {
        unsigned int pid = (unsigned int)peer_pid;
        attribute(&request.header, IFLA_NET_NS_PID, &pid, sizeof pid);
    }
    nest_end(&request.header, peer_info);
    nest_end(&request.header, data);
    nest_end(&request.header, linkinfo);
    return transact(&request.header);
}

int coreos_netlink_set_link(const char *name, const char *new_name, const char *master, int up, unsigned int mtu) {
    int index = (int)if_nametoindex(name);
    if (index == 0) return -ENODEV;
    struct request request;
    struct ifinfomsg *info = link_message(&request, RTM_NEWLINK, 0);
    info->ifi_index = index;
    if (up) {
        info->ifi_flags = IFF_UP;
        info->ifi_change = IFF_UP;
    }
    if (new_name) attribute(&request.header, IFLA_IFNAME, new_name, strlen(new_name) + 1);
    if (mtu) attribute(&request.header, IFLA_MTU, &mtu, sizeof mtu);
    if (master) {
        unsigned int master_index = if_nametoindex(master);
        if (master_index == 0) return -ENODEV;
        attribute(&request.header, IFLA_MASTER, &master_index, sizeof master_index);
    }
    return transact(&request.header);
}

int coreos_netlink_delete_link(const char *name) {
    int index = (int)if_nametoindex(name);
    if (index == 0) return -ENODEV;
    struct request request;
    struct ifinfomsg *info = link_message(&request, RTM_DELLINK, 0);
    info->ifi_index = index;
    return transact(&request.header);
}

int coreos_netlink_add_address(const char *name, const unsigned char *address, int length, int prefix) {
    int index = (int)if_nametoindex(name);
    if (index == 0) return -ENODEV;
    struct request request;
    memset(&request, 0, sizeof request);
    request.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    request.header.nlmsg_type = RTM_NEWADDR;
    request.header.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct ifaddrmsg *message = NLMSG_DATA(&request.header);
    message->ifa_family = length == 4 ? AF_INET : AF_INET6;
    message->ifa_prefixlen = (unsigned char)prefix;
    message->ifa_index = (unsigned)index;
    attribute(&request.header, IFA_LOCAL, address, (size_t)length);
    attribute(&request.header, IFA_ADDRESS, address, (size_t)length);
    int result = transact(&request.header);
    return result == -EEXIST ? 0 : result;
}

int coreos_netlink_add_default_route(const unsigned char *gateway, int length) {
    struct request request;
    memset(&request, 0, sizeof request);
    request.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    request.header.nlmsg_type = RTM_NEWROUTE;
    request.header.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct rtmsg *route = NLMSG_DATA(&request.header);
    route->rtm_family = length == 4 ? AF_INET : AF_INET6;
    route->rtm_table = RT_TABLE_MAIN;
    route->rtm_protocol = RTPROT_BOOT;
    route->rtm_scope = RT_SCOPE_UNIVERSE;
    route->rtm_type = RTN_UNICAST;
    attribute(&request.header, RTA_GATEWAY, gateway, (size_t)length);
    int result = transact(&request.header);
    return result == -EEXIST ? 0 : result;
}
