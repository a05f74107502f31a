// c-ares driven from libevent: c-ares tells us which sockets it wants watched
// (sock_state_cb); one libevent event per socket and one timer feed ares_process_fd().
#include "util/dns/resolver.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netdb.h>
#include <event2/event.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "util/base/strings.h"

namespace postern::dns {
namespace {

int ares_type(Type t) {
    switch (t) {
        case Type::A: return 1;
        case Type::AAAA: return 28;
        case Type::MX: return 15;
        case Type::NS: return 2;
        case Type::PTR: return 12;
        case Type::TXT: return 16;
    }
    return 1;
}

Rcode rcode_of(int status) {
    switch (status) {
        case ARES_SUCCESS: return Rcode::Ok;
        case ARES_ENODATA: return Rcode::NoData;
        case ARES_ENOTFOUND: return Rcode::NotFound;
        case ARES_EFORMERR:
        case ARES_EBADRESP:
        case ARES_EBADNAME: return Rcode::Malformed;
        default: return Rcode::TempFail;
    }
}

void parse_addresses(const unsigned char* buf, int len, Type type, Answer& a) {
    char text[INET6_ADDRSTRLEN];
    if (type == Type::A) {
        struct ares_addrttl ttls[64];
        int n = 64;
        int st = ares_parse_a_reply(buf, len, nullptr, ttls, &n);
        if (st != ARES_SUCCESS) {
            a.rcode = rcode_of(st);
            return;
        }
        for (int i = 0; i < n; ++i)
            if (inet_ntop(AF_INET, &ttls[i].ipaddr, text, sizeof text)) a.records.emplace_back(text);
    } else {
        struct ares_addr6ttl ttls[64];
        int n = 64;
        int st = ares_parse_aaaa_reply(buf, len, nullptr, ttls, &n);
        if (st != ARES_SUCCESS) {
            a.rcode = rcode_of(st);
            return;
        }
        for (int i = 0; i < n; ++i)
            if (inet_ntop(AF_INET6, &ttls[i].ip6addr, text, sizeof text)) a.records.emplace_back(text);
    }
}

void parse_reply(const unsigned char* buf, int len, Type type, Answer& a) {
    a.rcode = Rcode::Ok;
    int st = ARES_SUCCESS;
    switch (type) {
        case Type::A:
        case Type::AAAA: parse_addresses(buf, len, type, a); break;
        case Type::MX: {
            struct ares_mx_reply* mx = nullptr;
            st = ares_parse_mx_reply(buf, len, &mx);
            for (auto* p = mx; st == ARES_SUCCESS && p; p = p->next)
                a.mx.push_back(Mx{p->priority, *p->host ? p->host : "."});
            if (mx) ares_free_data(mx);
            std::stable_sort(a.mx.begin(), a.mx.end(),
                             [](const Mx& x, const Mx& y) { return x.preference < y.preference; });
            break;
        }
        case Type::NS: {
            struct hostent* host = nullptr;
            st = ares_parse_ns_reply(buf, len, &host);
            for (char** alias = host ? host->h_aliases : nullptr; st == ARES_SUCCESS && alias && *alias; ++alias)
                a.records.emplace_back(*alias);
            if (host) ares_free_hostent(host);
            break;
        }
        case Type::PTR: {
            struct hostent* host = nullptr;
            st = ares_parse_ptr_reply(buf, len, nullptr, 0, AF_INET, &host);
            if (st == ARES_SUCCESS && host) {
                a.records.emplace_back(host->h_name);
                for (char** alias = host->h_aliases; alias && *alias; ++alias) a.records.emplace_back(*alias);
            }
            if (host) ares_free_hostent(host);
            break;
        }
        case Type::TXT: {
            struct ares_txt_ext* txt = nullptr;
            st = ares_parse_txt_reply_ext(buf, len, &txt);
            for (auto* p = txt; st == ARES_SUCCESS && p; p = p->next) {
                std::string chunk(reinterpret_cast<const char*>(p->txt), p->length);
                if (p->record_start || a.records.empty())
                    a.records.push_back(chunk);
                else
                    a.records.back() += chunk;
            }
            if (txt) ares_free_data(txt);
            break;
        }
    }
    if (st != ARES_SUCCESS) a.rcode = rcode_of(st);
    if (a.rcode == Rcode::Ok && a.records.empty() && a.mx.empty()) a.rcode = Rcode::NoData;
    if (a.rcode != Rcode::Ok && a.error.empty()) a.error = ares_strerror(st == ARES_SUCCESS ? ARES_ENODATA : st);
}

// "options timeout:N attempts:N" of /etc/resolv.conf, which this c-ares version does
// not read itself; a resolver configured for fast failure must fail fast here too.
void resolv_conf_options(int& timeout_ms, int& tries) {
    std::ifstream in("/etc/resolv.conf");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("options", 0) != 0) continue;
        for (auto word : split_tokens(line, " \t")) {
            long v = 0;
            if (word.rfind("timeout:", 0) == 0 && parse_long(word.substr(8), v) && v > 0)
                timeout_ms = static_cast<int>(std::min(v, 30L) * 1000);
            if (word.rfind("attempts:", 0) == 0 && parse_long(word.substr(9), v) && v > 0)
                tries = static_cast<int>(std::min(v, 5L));
        }
    }
}

class AresResolver : public Resolver {
public:
    explicit AresResolver(event_base* base) : base_(base) {}
    ~AresResolver() override {
        destroying_ = true;
        if (channel_) ares_destroy(channel_);  // runs callbacks with ARES_EDESTRUCTION
        for (auto& [fd, ev] : events_) event_free(ev);
        if (timer_) event_free(timer_);
    }

    Status init(const Options& o) {
        if (int st = ares_library_init(ARES_LIB_INIT_ALL); st != ARES_SUCCESS)
            return make_error(strprintf("ares_library_init: %s", ares_strerror(st)));
        struct ares_options opts{};
        opts.sock_state_cb = &AresResolver::sock_state;
        opts.sock_state_cb_data = this;
        int timeout_ms = 5000, tries = 2;  // the C library's defaults (RES_TIMEOUT, RES_DFLRETRY)
        resolv_conf_options(timeout_ms, tries);
        opts.timeout = o.timeout_ms > 0 ? o.timeout_ms : timeout_ms;
        opts.tries = o.tries > 0 ? o.tries : tries;
        int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
        if (int st = ares_init_options(&channel_, &opts, mask); st != ARES_SUCCESS)
            return make_error(strprintf("ares_init_options: %s", ares_strerror(st)));
        if (!o.servers.empty())
            if (int st = ares_set_servers_ports_csv(channel_, o.servers.c_str()); st != ARES_SUCCESS)
                return make_error(strprintf("DNS servers %s: %s", o.servers.c_str(), ares_strerror(st)));
        timer_ = evtimer_new(base_, &AresResolver::on_timer, this);
        return Status::success();
    }

    void query(std::string_view name, Type type, Callback callback) override {
        auto* req = new Request{this, type, std::move(callback)};
        ++pending_;
        std::string n(name);
        // A deferred start: c-ares may answer at once (a bad name), and the contract says
        // the callback never runs inside query().
        ares_query(channel_, n.c_str(), 1 /* IN */, ares_type(type), &AresResolver::on_answer, req);
        arm_timer();
    }
    size_t pending() const override { return pending_; }

    void host_by_address(std::string_view address, Callback callback) override {
        std::string text(address);
        unsigned char buf[16];
        int family = text.find(':') != std::string::npos ? AF_INET6 : AF_INET;
        if (inet_pton(family, text.c_str(), buf) != 1) {
            Answer a;
            a.rcode = Rcode::Malformed;
            a.error = "not an address: " + text;
            deliver_later(std::move(callback), std::move(a));
            return;
        }
        auto* req = new Request{this, Type::PTR, std::move(callback)};
        ++pending_;
        ares_gethostbyaddr(channel_, buf, family == AF_INET ? 4 : 16, family, &AresResolver::on_host, req);
        arm_timer();
    }

    void host_by_name(std::string_view name, bool ipv6, Callback callback) override {
        auto* req = new Request{this, ipv6 ? Type::AAAA : Type::A, std::move(callback)};
        ++pending_;
        ares_gethostbyname(channel_, std::string(name).c_str(), ipv6 ? AF_INET6 : AF_INET, &AresResolver::on_host, req);
        arm_timer();
    }

private:
    struct Request {
        AresResolver* self;
        Type type;
        Callback callback;
    };

    static void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* buf, int len) {
        std::unique_ptr<Request> req(static_cast<Request*>(arg));
        AresResolver* self = req->self;
        --self->pending_;
        if (self->destroying_ || status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) return;
        Answer a;
        if (status == ARES_SUCCESS) {
            parse_reply(buf, len, req->type, a);
        } else {
            a.rcode = rcode_of(status);
            a.error = ares_strerror(status);
        }
        // Answers that c-ares gives synchronously inside ares_query() are delivered from
        // the loop, so callers never see re-entrancy.
        if (self->in_process_ == 0) {
            auto* later = new std::pair<Callback, Answer>(std::move(req->callback), std::move(a));
            event_base_once(self->base_, -1, EV_TIMEOUT, &AresResolver::run_later, later, nullptr);
            return;
        }
        req->callback(a);
    }

    static void on_host(void* arg, int status, int /*timeouts*/, struct hostent* host) {
        std::unique_ptr<Request> req(static_cast<Request*>(arg));
        AresResolver* self = req->self;
        --self->pending_;
        if (self->destroying_ || status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) return;
        Answer a;
        a.rcode = rcode_of(status);
        if (status != ARES_SUCCESS) {
            a.error = ares_strerror(status);
        } else if (req->type == Type::PTR) {
            a.records.emplace_back(host->h_name);
            for (char** alias = host->h_aliases; alias && *alias; ++alias) a.records.emplace_back(*alias);
        } else {
            char text[INET6_ADDRSTRLEN];
            for (char** addr = host->h_addr_list; addr && *addr; ++addr)
                if (inet_ntop(host->h_addrtype, *addr, text, sizeof text)) a.records.emplace_back(text);
        }
        if (a.ok() && a.records.empty()) a.rcode = Rcode::NoData;
        if (self->in_process_ == 0) {
            self->deliver_later(std::move(req->callback), std::move(a));
            return;
        }
        req->callback(a);
    }

    void deliver_later(Callback callback, Answer a) {
        auto* later = new std::pair<Callback, Answer>(std::move(callback), std::move(a));
        event_base_once(base_, -1, EV_TIMEOUT, &AresResolver::run_later, later, nullptr);
    }

    static void run_later(evutil_socket_t, short, void* arg) {
        std::unique_ptr<std::pair<Callback, Answer>> p(static_cast<std::pair<Callback, Answer>*>(arg));
        p->first(p->second);
    }

    static void sock_state(void* data, ares_socket_t fd, int readable, int writable) {
        auto* self = static_cast<AresResolver*>(data);
        if (self->destroying_) return;
        auto it = self->events_.find(fd);
        if (it != self->events_.end()) {
            event_free(it->second);
            self->events_.erase(it);
        }
        if (!readable && !writable) return;
        short what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
        event* ev = event_new(self->base_, fd, what, &AresResolver::on_socket, self);
        event_add(ev, nullptr);
        self->events_[fd] = ev;
    }

    static void on_socket(evutil_socket_t fd, short what, void* arg) {
        auto* self = static_cast<AresResolver*>(arg);
        self->process((what & EV_READ) ? fd : ARES_SOCKET_BAD, (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    }

    static void on_timer(evutil_socket_t, short, void* arg) {
        static_cast<AresResolver*>(arg)->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }

    void process(ares_socket_t rfd, ares_socket_t wfd) {
        ++in_process_;
        ares_process_fd(channel_, rfd, wfd);
        --in_process_;
        arm_timer();
    }

    void arm_timer() {
        if (destroying_ || !timer_) return;
        if (pending_ == 0) {
            evtimer_del(timer_);
            return;
        }
        struct timeval max{1, 0}, tv{};
        struct timeval* t = ares_timeout(channel_, &max, &tv);
        evtimer_add(timer_, t);
    }

    event_base* base_;
    ares_channel channel_ = nullptr;
    event* timer_ = nullptr;
    std::map<ares_socket_t, event*> events_;
    size_t pending_ = 0;
    int in_process_ = 0;
    bool destroying_ = false;
};

}  // namespace

std::string_view type_name(Type t) {
    switch (t) {
        case Type::A: return "A";
        case Type::AAAA: return "AAAA";
        case Type::MX: return "MX";
        case Type::NS: return "NS";
        case Type::PTR: return "PTR";
        case Type::TXT: return "TXT";
    }
    return "A";
}

Result<std::unique_ptr<Resolver>> Resolver::create(event_base* base, const Options& options) {
    auto r = std::make_unique<AresResolver>(base);
    if (Status st = r->init(options); !st) return make_error(st.error());
    return std::unique_ptr<Resolver>(std::move(r));
}

std::string reverse_address(std::string_view address) {
    std::string a(address);
    unsigned char buf[16];
    if (inet_pton(AF_INET, a.c_str(), buf) == 1)
        return strprintf("%u.%u.%u.%u", buf[3], buf[2], buf[1], buf[0]);
    if (inet_pton(AF_INET6, a.c_str(), buf) != 1) return {};
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (int i = 15; i >= 0; --i) {
        out += hex[buf[i] & 0xf];
        out += '.';
        out += hex[buf[i] >> 4];
        if (i) out += '.';
    }
    return out;
}

std::string ptr_name(std::string_view address) {
    std::string rev = reverse_address(address);
    if (rev.empty()) return {};
    return rev + (address.find(':') != std::string_view::npos ? ".ip6.arpa" : ".in-addr.arpa");
}

}  // namespace postern::dns
