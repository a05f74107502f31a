#include "util/sasl/cyrus_sasl_server.h"

#include <sasl/sasl.h>

#include <string>
#include <utility>
#include <vector>

#include "util/base/strings.h"
#include "util/daemon/worker_thread.h"
#include "util/log/log.h"
#include "util/sasl/sasl_options.h"

namespace postern::sasl {
namespace {

constexpr const char* kNoMechanisms = "no SASL authentication mechanisms";

// Cyrus keeps the callback array, the configuration path and the application name
// (pointers, not copies: sasl_server_new reads the name again) for the life of the
// library, and sasl_server_init/sasl_server_done are per process: a count lets tests
// create and drop factories one after another.
int g_library_users = 0;
std::string g_config_path;
std::string g_app_name;

// Cyrus's own diagnostics, with Postfix's prefixes (xsasl_cyrus_log). On the worker
// thread they are kept and logged by the completion, on the event loop's thread.
struct LogLine {
    bool warning;
    std::string text;
};
thread_local std::vector<LogLine>* t_captured = nullptr;

void emit(bool warning, std::string text) {
    if (t_captured != nullptr)
        t_captured->push_back({warning, std::move(text)});
    else if (warning)
        log::warn("%s", text.c_str());
    else
        log::info("%s", text.c_str());
}

int log_callback(void*, int priority, const char* message) {
    switch (priority) {
        case SASL_LOG_ERR:
        case SASL_LOG_WARN:
            emit(true, strprintf("SASL authentication problem: %s", message));
            break;
        case SASL_LOG_FAIL:
            emit(true, strprintf("SASL authentication failure: %s", message));
            break;
        case SASL_LOG_NOTE:
            if (log::verbose()) emit(false, strprintf("SASL authentication info: %s", message));
            break;
        case SASL_LOG_DEBUG:
            if (log::verbose() > 1) emit(false, strprintf("SASL authentication debug: %s", message));
            break;
        case SASL_LOG_TRACE:
        case SASL_LOG_PASS:
            if (log::verbose() > 2) emit(false, strprintf("SASL authentication trace: %s", message));
            break;
        default:
            break;
    }
    return SASL_OK;
}

// Cyrus's callback slot is a generic int(*)(); the detour through void(*)() is the
// cast GCC accepts for "any function type".
sasl_callback_t g_callbacks[] = {
    {SASL_CB_LOG,
     reinterpret_cast<int (*)()>(reinterpret_cast<void (*)()>(&log_callback)), nullptr},
    {SASL_CB_LIST_END, nullptr, nullptr},
};

struct ConnDeleter {
    void operator()(sasl_conn_t* conn) const { sasl_dispose(&conn); }
};
using ConnPtr = std::unique_ptr<sasl_conn_t, ConnDeleter>;

// Postfix's classification (xsasl_cyrus_server_auth_response): a broken back end is
// temporary (454), anything else is the client's fault (535). "user not found" reads
// as "authentication failure" so that a client cannot probe for user names.
SaslStep failure_step(int status) {
    if (status == SASL_NOUSER) status = SASL_BADAUTH;
    SaslStep step;
    step.state = SaslStep::State::Failure;
    step.reason = sasl_errstring(status, nullptr, nullptr);
    step.temporary = status == SASL_FAIL || status == SASL_NOMEM || status == SASL_TRYAGAIN ||
                     status == SASL_UNAVAIL;
    return step;
}

std::string address_port(const std::string& address, const std::string& port) {
    if (address.empty()) return "";
    return address + ";" + (port.empty() ? "0" : port);
}

// What a session's Cyrus state is: the sasl_conn_t is used by the worker while a step
// runs, so the job and its completion share it with the server; the last one disposes of
// it (the completion, on the loop). `alive` ends with the server: a step that completes
// after the session went away is dropped.
struct CyrusState {
    explicit CyrusState(ConnPtr c) : conn(std::move(c)) {}
    ConnPtr conn;
};

// Runs on the worker: the blocking Cyrus call, then the step made of its outcome.
SaslStep outcome(sasl_conn_t* conn, int status, const char* out, unsigned out_len);

class CyrusSaslServer final : public SaslServer {
public:
    CyrusSaslServer(ConnPtr conn, std::string mechanisms, daemon::WorkerThread& worker)
        : state_(std::make_shared<CyrusState>(std::move(conn))),
          mechanisms_(std::move(mechanisms)),
          worker_(worker) {}
    ~CyrusSaslServer() override { *alive_ = false; }

    std::string mechanisms() const override { return mechanisms_; }

    void start(std::string_view mechanism, const std::optional<std::string>& initial_response,
               StepDone done) override {
        // Cyrus would refuse a mechanism its security properties exclude, but not one
        // that only smtpd_sasl_mechanism_filter hides.
        if (!mechanism_listed(mechanisms_, mechanism)) {
            SaslStep refused = failure_step(SASL_NOMECH);
            run([refused](sasl_conn_t*) { return refused; }, std::move(done));
            return;
        }
        run([name = std::string(mechanism), initial = initial_response](sasl_conn_t* conn) {
                const char* out = nullptr;
                unsigned out_len = 0;
                int status = sasl_server_start(conn, name.c_str(), initial ? initial->data() : nullptr,
                                               initial ? unsigned(initial->size()) : 0, &out, &out_len);
                return outcome(conn, status, out, out_len);
            },
            std::move(done));
    }

    void step(std::string_view response, StepDone done) override {
        run([response = std::string(response)](sasl_conn_t* conn) {
                const char* out = nullptr;
                unsigned out_len = 0;
                int status = sasl_server_step(conn, response.data(), unsigned(response.size()), &out, &out_len);
                return outcome(conn, status, out, out_len);
            },
            std::move(done));
    }

private:
    // Every answer comes through the worker, even one known at once: the caller sees
    // one order of events whatever the mechanism.
    void run(std::function<SaslStep(sasl_conn_t*)> call, StepDone done) {
        std::shared_ptr<CyrusState> state = state_;
        std::weak_ptr<bool> alive = alive_;
        worker_.post([state, alive, call = std::move(call), done = std::move(done)]() mutable {
            std::vector<LogLine> lines;
            t_captured = &lines;
            SaslStep step = call(state->conn.get());
            t_captured = nullptr;
            return daemon::WorkerThread::Completion(
                [state, alive, lines = std::move(lines), step = std::move(step), done = std::move(done)] {
                    for (const LogLine& line : lines) emit(line.warning, line.text);
                    if (!alive.expired()) done(step);
                });
        });
    }

    std::shared_ptr<CyrusState> state_;
    std::string mechanisms_;
    daemon::WorkerThread& worker_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

std::string username_of(sasl_conn_t* conn) {
    const void* value = nullptr;
    if (sasl_getprop(conn, SASL_USERNAME, &value) != SASL_OK || value == nullptr) return "";
    return static_cast<const char*>(value);
}

SaslStep outcome(sasl_conn_t* conn, int status, const char* out, unsigned out_len) {
    SaslStep step;
    if (status == SASL_CONTINUE) {
        step.state = SaslStep::State::Continue;
        if (out) step.challenge.assign(out, out_len);
        return step;
    }
    if (status != SASL_OK) {
        step = failure_step(status);
        step.username = username_of(conn);
        return step;
    }
    step.username = username_of(conn);
    if (step.username.empty()) {
        emit(true, "cannot look up the authenticated SASL username");
        return failure_step(SASL_FAIL);
    }
    step.state = SaslStep::State::Success;
    return step;
}

class CyrusSaslServerFactory final : public SaslServerFactory {
public:
    CyrusSaslServerFactory(const config::Config& config, event_base* base)
        : base_(base),
          service_(config.get("smtpd_sasl_service")),
          hostname_(config.get("myhostname")),
          realm_(config.get("smtpd_sasl_local_domain")),
          plain_flags_(security_flags(config, "smtpd_sasl_security_options")),
          tls_flags_(security_flags(config, "smtpd_sasl_tls_security_options")),
          filter_(mechanism_filter(config)) {}

    ~CyrusSaslServerFactory() override {
        worker_.reset();  // no Cyrus call in flight once the library is done
        if (--g_library_users == 0) sasl_server_done();
    }

    Result<std::unique_ptr<SaslServer>> new_server(const SaslConnectionInfo& info) override {
        std::string local = address_port(info.local_address, info.local_port);
        std::string remote = address_port(info.remote_address, info.remote_port);
        sasl_conn_t* raw = nullptr;
        int status = sasl_server_new(service_.c_str(), hostname_.c_str(),
                                     realm_.empty() ? nullptr : realm_.c_str(),
                                     local.empty() ? nullptr : local.c_str(),
                                     remote.empty() ? nullptr : remote.c_str(), nullptr, 0, &raw);
        if (status != SASL_OK)
            return make_error(strprintf("SASL per-connection server initialization: %s",
                                        sasl_errstring(status, nullptr, nullptr)));
        ConnPtr conn(raw);
        sasl_security_properties_t props{};
        props.min_ssf = 0;
        props.max_ssf = 0;  // no SASL security layer: TLS is the one for SMTP
        props.maxbufsize = 0;
        props.security_flags = info.tls_active ? tls_flags_ : plain_flags_;
        status = sasl_setprop(conn.get(), SASL_SEC_PROPS, &props);
        if (status != SASL_OK)
            return make_error(strprintf("SASL per-connection security setup; %s",
                                        sasl_errdetail(conn.get())));
        Result<std::string> mechanisms = list_mechanisms(conn.get());
        if (!mechanisms) return make_error(mechanisms.error());
        if (worker_ == nullptr) {
            auto worker = daemon::WorkerThread::create(base_);
            if (!worker) return make_error(worker.error());
            worker_ = std::move(*worker);
        }
        return std::unique_ptr<SaslServer>(
            std::make_unique<CyrusSaslServer>(std::move(conn), std::move(*mechanisms), *worker_));
    }

private:
    static unsigned security_flags(const config::Config& config, std::string_view name) {
        Result<unsigned> flags = parse_security_options(config.get_list(name), config.get(name));
        if (!flags) {
            // Postfix finds this at the first connection; the three lines are its.
            log::warn("%s", flags.error().c_str());
            log::warn("bad per-session SASL security properties");
            log::fatal("SASL per-connection initialization failed");
        }
        return *flags;
    }

    static MechanismFilter mechanism_filter(const config::Config& config) {
        auto filter = MechanismFilter::open(config.get_list("smtpd_sasl_mechanism_filter"));
        if (!filter) log::fatal("smtpd_sasl_mechanism_filter: %s", filter.error().c_str());
        return std::move(*filter);
    }

    Result<std::string> list_mechanisms(sasl_conn_t* conn) const {
        const char* list = nullptr;
        int count = 0;
        if (sasl_listmech(conn, nullptr, "", " ", "", &list, nullptr, &count) != SASL_OK ||
            count == 0 || list == nullptr)
            return make_error(kNoMechanisms);
        std::string kept = filter_.apply(list);
        if (kept.empty())
            return make_error(strprintf("smtpd_sasl_mechanism_filter discards all mechanisms in '%s'",
                                        list));
        return kept;
    }

    event_base* base_;
    std::string service_, hostname_, realm_;
    unsigned plain_flags_, tls_flags_;
    MechanismFilter filter_;
    // Every Cyrus step of the process, one at a time (Cyrus's plug-ins are not known
    // to be thread-safe); made with the first session, after the jail.
    std::unique_ptr<daemon::WorkerThread> worker_;
};

}  // namespace

std::unique_ptr<SaslServerFactory> create_cyrus_factory(const config::Config& config, event_base* base) {
    if (g_library_users == 0) {
        g_config_path = config.get("cyrus_sasl_config_path");
        if (!g_config_path.empty() &&
            sasl_set_path(SASL_PATH_TYPE_CONFIG, g_config_path.data()) != SASL_OK) {
            log::warn("failed to set Cyrus SASL configuration path: \"%s\"", g_config_path.c_str());
            log::fatal("SASL per-process initialization failed");
        }
        g_app_name = config.get("smtpd_sasl_path");
        int status = sasl_server_init(g_callbacks, g_app_name.c_str());
        if (status != SASL_OK) {
            log::warn("SASL per-process initialization failed: %s",
                      sasl_errstring(status, nullptr, nullptr));
            log::fatal("SASL per-process initialization failed");
        }
    }
    ++g_library_users;
    auto factory = std::make_unique<CyrusSaslServerFactory>(config, base);
    // Postfix finds an empty mechanism list when a client connects and dies of it then;
    // a daemon that serves many sessions finds it once, now. Either kind of session
    // (before or after TLS) with mechanisms is enough to start.
    auto plain = factory->new_server(SaslConnectionInfo{});
    if (!plain) {
        SaslConnectionInfo tls_info;
        tls_info.tls_active = true;
        auto tls = factory->new_server(tls_info);
        if (!tls) {
            if (tls.error() != kNoMechanisms) log::warn("%s", tls.error().c_str());
            log::fatal("%s", kNoMechanisms);
        }
    }
    return factory;
}

}  // namespace postern::sasl
