// hash: and btree: tables — Berkeley DB files NAME.db that Postfix reads and writes.
//
// File layout (what makes the files interchangeable): the DB_HASH or DB_BTREE access
// method, no environment files, keys folded to lower case unless the caller says
// otherwise, and keys and values stored WITH one trailing NUL byte when the flags leave
// the choice open (Postfix's Linux default). Lookups try the NUL form, then the bare
// form, and remember which one the file uses, as dict_db.c does.
//
// Locking follows Postfix on Linux (INTERNAL_LOCK is flock): readers take a shared flock
// on the .db around each lookup, writers an exclusive one.
//
// Building (kCreate) differs from Postfix on purpose: Postfix truncates the live file in
// place and relies on readers' locks; Postern builds NAME.db.postern-tmp.PID beside it and
// renames it over NAME.db in sync(), so a reader never sees a half-built table and never
// waits for the build (the old file is not locked). The price: an in-place update
// (postmap -i) that runs during a rebuild lands in the replaced file and is lost, as it
// would be overwritten by Postfix's truncating rebuild too.
#include <db.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/base/unique_fd.h"
#include "util/log/log.h"
#include "util/table/map_command.h"
#include "util/table/table_source.h"
#include "util/table/table_types.h"

namespace postern::table {
namespace {

constexpr u_int32_t kHashElements = 4096;            // Postfix's DICT_DB_NELM
constexpr u_int32_t kReadCache = 128 * 1024;         // berkeley_db_read_buffer_size
constexpr u_int32_t kCreateCache = 16 * 1024 * 1024; // berkeley_db_create_buffer_size

std::string errno_text(int err) { return std::strerror(err); }

// Berkeley DB returns either an errno value or one of its own negative codes.
std::string db_error_text(int status) {
    if (status > 0) return errno_text(status);
    return db_strerror(status);
}

// Owns one DB handle.
struct DbCloser {
    void operator()(DB* db) const {
        if (db) db->close(db, 0);
    }
};
using DbPtr = std::unique_ptr<DB, DbCloser>;

// Holds an flock for the lifetime of a scope; the fd stays owned by someone else.
class ScopedFlock {
public:
    ScopedFlock(int fd, int op) : fd_(fd) {
        if (fd_ >= 0) {
            while (::flock(fd_, op) < 0 && errno == EINTR) {
            }
        }
    }
    ~ScopedFlock() {
        if (fd_ >= 0) ::flock(fd_, LOCK_UN);
    }
    ScopedFlock(const ScopedFlock&) = delete;
    ScopedFlock& operator=(const ScopedFlock&) = delete;

private:
    int fd_;
};

class BerkeleyTable final : public Table {
public:
    BerkeleyTable(std::string spec, unsigned flags, std::string db_path)
        : Table(std::move(spec), flags), db_path_(std::move(db_path)), try_flags_(flags) {
        if ((try_flags_ & (kTryNul1 | kTryNul0)) == 0) try_flags_ |= kTryNul1 | kTryNul0;
    }
    ~BerkeleyTable() override;

    Status open(DBTYPE type);

    LookupResult lookup(std::string_view key) override;
    Status update(std::string_view key, std::string_view value) override;
    Result<bool> remove(std::string_view key) override;
    Status for_each(const std::function<bool(std::string_view, std::string_view)>& fn) override;
    Status sync() override;
    bool changed() const override;
    // Stores the bytes as given: no folding, no NUL, replacing an existing entry.
    Status put_exact(std::string_view key, std::string_view value);

private:
    Status open_for_create(DBTYPE type);
    Status open_existing(DBTYPE type);
    Status publish();
    void warn_if_stale() const;
    std::string folded(std::string_view key) const {
        return (flags() & kFoldFix) ? fold_key(key, (flags() & kUtf8) != 0) : std::string(key);
    }
    bool per_op_lock() const { return (flags() & (kLock | kReadOnly | kCreate)) != 0 && tmp_path_.empty(); }

    DBTYPE type_ = DB_HASH;
    std::string db_path_;
    std::string tmp_path_;       // while building, until sync() publishes it
    unsigned try_flags_;         // which NUL conventions are still possible
    DbPtr db_;
    int db_fd_ = -1;             // owned by db_
    time_t opened_mtime_ = 0;    // for changed()
    UniqueFd build_lock_fd_;     // NAME.db, exclusively locked during an incremental update
};

BerkeleyTable::~BerkeleyTable() {
    if (!tmp_path_.empty()) {
        // Never published: throw the half-built file away.
        db_.reset();
        ::unlink(tmp_path_.c_str());
    }
}

Status BerkeleyTable::open(DBTYPE type) {
    type_ = type;
    return (flags() & kCreate) ? open_for_create(type) : open_existing(type);
}

Status BerkeleyTable::open_existing(DBTYPE type) {
    const bool read_only = (flags() & kReadOnly) != 0;
    if (!read_only && !(flags() & (kLock | kCreate))) {
        // Incremental update (postmap -i): hold the table for the whole session, as
        // Postfix's mkmap does, so readers see all of the update or none of it.
        build_lock_fd_.reset(::open(db_path_.c_str(), O_RDWR | O_CLOEXEC));
        if (!build_lock_fd_)  // worded as Postfix's mkmap lock open
            return make_error(strprintf("open %s: %s", db_path_.c_str(), errno_text(errno).c_str()));
        while (::flock(build_lock_fd_.get(), LOCK_EX) < 0 && errno == EINTR) {
        }
    }
    DB* raw = nullptr;
    int status = db_create(&raw, nullptr, 0);
    if (status != 0) return make_error(strprintf("create DB database: %s", db_error_text(status).c_str()));
    db_.reset(raw);
    db_->set_cachesize(db_.get(), 0, read_only ? kReadCache : kCreateCache, 0);
    status = db_->open(db_.get(), nullptr, db_path_.c_str(), nullptr, type,
                       read_only ? DB_RDONLY : 0, 0644);
    if (status != 0) {
        db_.reset();
        return make_error(strprintf("open database %s: %s", db_path_.c_str(), db_error_text(status).c_str()));
    }
    if (db_->fd(db_.get(), &db_fd_) != 0) db_fd_ = -1;
    if (db_fd_ >= 0) ::fcntl(db_fd_, F_SETFD, FD_CLOEXEC);
    struct stat st;
    if (db_fd_ >= 0 && ::fstat(db_fd_, &st) == 0) opened_mtime_ = st.st_mtime;
    warn_if_stale();
    return Status::success();
}

bool BerkeleyTable::changed() const {
    if (db_fd_ < 0 || !tmp_path_.empty()) return false;
    struct stat open_st, path_st;
    if (::fstat(db_fd_, &open_st) < 0) return false;
    if (::stat(db_path_.c_str(), &path_st) < 0) return true;  // removed
    return open_st.st_ino != path_st.st_ino || open_st.st_dev != path_st.st_dev ||
           open_st.st_mtime != opened_mtime_;
}

// Postfix warns when the source file was edited (more than 100 seconds ago, so not
// during a rebuild) after the table was built: someone forgot to run postmap.
void BerkeleyTable::warn_if_stale() const {
    if (!(flags() & kLock) || db_fd_ < 0) return;
    struct stat db_st, src_st;
    std::string source = db_path_.substr(0, db_path_.size() - 3);
    if (::fstat(db_fd_, &db_st) == 0 && ::stat(source.c_str(), &src_st) == 0 &&
        src_st.st_mtime > db_st.st_mtime && src_st.st_mtime < std::time(nullptr) - 100)
        log::warn("database %s is older than source file %s", db_path_.c_str(), source.c_str());
}

Status BerkeleyTable::open_for_create(DBTYPE type) {
    // The replaced file is only looked at (for its owner and mode), never locked: a
    // lock would make readers wait for the whole build, which the rename makes needless.
    UniqueFd old_fd(::open(db_path_.c_str(), O_RDONLY | O_CLOEXEC));
    tmp_path_ = strprintf("%s.postern-tmp.%ld", db_path_.c_str(), static_cast<long>(::getpid()));
    ::unlink(tmp_path_.c_str());  // a leftover from a crashed build with our pid
    DB* raw = nullptr;
    int status = db_create(&raw, nullptr, 0);
    if (status != 0) {
        tmp_path_.clear();
        return make_error(strprintf("create DB database: %s", db_error_text(status).c_str()));
    }
    db_.reset(raw);
    db_->set_cachesize(db_.get(), 0, kCreateCache, 0);
    if (type == DB_HASH) db_->set_h_nelem(db_.get(), kHashElements);
    status = db_->open(db_.get(), nullptr, tmp_path_.c_str(), nullptr, type, DB_CREATE | DB_EXCL, 0644);
    if (status != 0) {
        db_.reset();
        tmp_path_.clear();
        // Name the table, not our temporary: that is the file the user knows.
        return make_error(strprintf("open database %s: %s", db_path_.c_str(), db_error_text(status).c_str()));
    }
    if (db_->fd(db_.get(), &db_fd_) != 0) db_fd_ = -1;
    if (db_fd_ >= 0) ::fcntl(db_fd_, F_SETFD, FD_CLOEXEC);
    // The replaced file's owner and mode carry over, as they do when Postfix rewrites
    // the file in place.
    struct stat st;
    if (old_fd && db_fd_ >= 0 && ::fstat(old_fd.get(), &st) == 0) {
        if (::geteuid() == 0) (void)!::fchown(db_fd_, st.st_uid, st.st_gid);
        ::fchmod(db_fd_, st.st_mode & 07777);
    }
    return Status::success();
}

LookupResult BerkeleyTable::lookup(std::string_view key) {
    if ((flags() & kUtf8) && !valid_utf8(key)) {
        std::string_view type = std::string_view(spec()).substr(0, spec().find(':'));
        log::warn("%.*s:%s: non-UTF-8 key \"%s\": malformed UTF-8 or invalid codepoint",
                  static_cast<int>(type.size()), type.data(), db_path_.c_str(), printable(key).c_str());
        return LookupResult::miss();
    }
    std::string name = folded(key);
    // Postfix treats keys as C strings.
    if (name.find('\0') != std::string::npos) name.resize(name.find('\0'));
    ScopedFlock lock(per_op_lock() ? db_fd_ : -1, LOCK_SH);
    for (unsigned variant : {kTryNul1, kTryNul0}) {
        if (!(try_flags_ & variant)) continue;
        DBT k{}, v{};
        k.data = name.data();
        k.size = static_cast<u_int32_t>(name.size() + (variant == kTryNul1 ? 1 : 0));
        int status = db_->get(db_.get(), nullptr, &k, &v, 0);
        if (status == 0) {
            // Learn the file's convention, as Postfix does.
            try_flags_ &= ~(variant == kTryNul1 ? kTryNul0 : kTryNul1);
            std::string_view data(static_cast<const char*>(v.data), v.size);
            size_t nul = data.find('\0');
            return LookupResult::hit(std::string(nul == std::string_view::npos ? data : data.substr(0, nul)));
        }
        if (status != DB_NOTFOUND)
            return LookupResult::fail(strprintf("error reading %s: %s", db_path_.c_str(),
                                                db_error_text(status).c_str()));
    }
    return LookupResult::miss();
}

Status BerkeleyTable::update(std::string_view key, std::string_view value) {
    if (flags() & kReadOnly)
        return make_error(strprintf("table %s: operation not supported", spec().c_str()));
    std::string name = folded(key);
    if ((try_flags_ & kTryNul1) && (try_flags_ & kTryNul0)) try_flags_ &= ~kTryNul0;
    const bool with_nul = (try_flags_ & kTryNul1) != 0;
    std::string val(value);
    DBT k{}, v{};
    k.data = name.data();
    k.size = static_cast<u_int32_t>(name.size() + (with_nul ? 1 : 0));
    v.data = val.data();
    v.size = static_cast<u_int32_t>(val.size() + (with_nul ? 1 : 0));
    ScopedFlock lock(per_op_lock() && !(flags() & kReadOnly) ? db_fd_ : -1, LOCK_EX);
    int status = db_->put(db_.get(), nullptr, &k, &v, (flags() & kDupReplace) ? 0 : DB_NOOVERWRITE);
    if (status == DB_KEYEXIST) {
        if (flags() & kDupIgnore) return Status::success();
        if (flags() & kDupWarn) {
            log::warn("%s: duplicate entry: \"%s\"", db_path_.c_str(), name.c_str());
            return Status::success();
        }
        return make_error(strprintf("%s: duplicate entry: \"%s\"", db_path_.c_str(), name.c_str()));
    }
    if (status != 0)
        return make_error(strprintf("error writing %s: %s", db_path_.c_str(), db_error_text(status).c_str()));
    return Status::success();
}

Status BerkeleyTable::put_exact(std::string_view key, std::string_view value) {
    DBT k{}, v{};
    k.data = const_cast<char*>(key.data());
    k.size = static_cast<u_int32_t>(key.size());
    v.data = const_cast<char*>(value.data());
    v.size = static_cast<u_int32_t>(value.size());
    ScopedFlock lock(per_op_lock() && !(flags() & kReadOnly) ? db_fd_ : -1, LOCK_EX);
    int status = db_->put(db_.get(), nullptr, &k, &v, 0);
    if (status != 0)
        return make_error(strprintf("error writing %s: %s", db_path_.c_str(), db_error_text(status).c_str()));
    return Status::success();
}

Result<bool> BerkeleyTable::remove(std::string_view key) {
    if (flags() & kReadOnly)
        return make_error(strprintf("table %s: operation not supported", spec().c_str()));
    std::string name = folded(key);
    ScopedFlock lock(per_op_lock() && !(flags() & kReadOnly) ? db_fd_ : -1, LOCK_EX);
    for (unsigned variant : {kTryNul1, kTryNul0}) {
        if (!(try_flags_ & variant)) continue;
        DBT k{};
        k.data = name.data();
        k.size = static_cast<u_int32_t>(name.size() + (variant == kTryNul1 ? 1 : 0));
        int status = db_->del(db_.get(), nullptr, &k, 0);
        if (status == 0) {
            try_flags_ &= ~(variant == kTryNul1 ? kTryNul0 : kTryNul1);
            return true;
        }
        if (status != DB_NOTFOUND)
            return make_error(strprintf("error deleting from %s: %s", db_path_.c_str(),
                                        db_error_text(status).c_str()));
    }
    return false;
}

Status BerkeleyTable::for_each(const std::function<bool(std::string_view, std::string_view)>& fn) {
    DBC* cursor = nullptr;
    int status = db_->cursor(db_.get(), nullptr, &cursor, 0);
    if (status != 0)
        return make_error(strprintf("error seeking %s: %s", db_path_.c_str(), db_error_text(status).c_str()));
    Status result;
    for (;;) {
        DBT k{}, v{};
        {
            ScopedFlock lock(per_op_lock() ? db_fd_ : -1, LOCK_SH);
            status = cursor->get(cursor, &k, &v, DB_NEXT);
        }
        if (status == DB_NOTFOUND) break;
        if (status != 0) {
            result = make_error(strprintf("error [%d] seeking %s: %s", status, db_path_.c_str(),
                                          db_error_text(status).c_str()));
            break;
        }
        // C-string view of both, as Postfix prints them.
        std::string_view key(static_cast<const char*>(k.data), k.size);
        std::string_view val(static_cast<const char*>(v.data), v.size);
        key = key.substr(0, key.find('\0'));
        val = val.substr(0, val.find('\0'));
        if (!fn(key, val)) break;
    }
    cursor->close(cursor);
    return result;
}

Status BerkeleyTable::sync() {
    if (!tmp_path_.empty()) return publish();
    int status = db_->sync(db_.get(), 0);
    if (status != 0)
        return make_error(strprintf("flush database %s: %s", db_path_.c_str(), db_error_text(status).c_str()));
    return Status::success();
}

// Finishes a build: close the temporary (Berkeley DB flushes by file name, so it must be
// closed before it is renamed), make it durable, rename it over NAME.db, and reopen the
// result so the table stays usable.
Status BerkeleyTable::publish() {
    DB* db = db_.release();
    db_fd_ = -1;
    int status = db->close(db, 0);
    std::string tmp = std::move(tmp_path_);
    tmp_path_.clear();
    if (status != 0) {
        ::unlink(tmp.c_str());
        return make_error(strprintf("close database %s: %s", tmp.c_str(), db_error_text(status).c_str()));
    }
    UniqueFd fd(::open(tmp.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || ::fsync(fd.get()) < 0 || ::rename(tmp.c_str(), db_path_.c_str()) < 0) {
        std::string err = strprintf("replace %s: %s", db_path_.c_str(), errno_text(errno).c_str());
        ::unlink(tmp.c_str());
        return make_error(err);
    }
    UniqueFd dir(::open(dirname_of(db_path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) ::fsync(dir.get());
    return open_existing(type_);
}

TableResult open_berkeley(std::string_view spec, std::string_view name, unsigned flags, DBTYPE type) {
    if (name.empty())
        return make_error(strprintf("open dictionary: expecting \"type:name\" form instead of \"%.*s\"",
                                    static_cast<int>(spec.size()), spec.data()));
    auto table = std::make_unique<BerkeleyTable>(std::string(spec), flags, std::string(name) + ".db");
    if (Status st = table->open(type); !st) return make_error(st.error());
    return std::unique_ptr<Table>(std::move(table));
}

}  // namespace

Status put_raw(Table& table, std::string_view key, std::string_view value) {
    auto* db = dynamic_cast<BerkeleyTable*>(&table);
    if (!db) return make_error(strprintf("table %s: raw update not supported", table.spec().c_str()));
    return db->put_exact(key, value);
}

TableResult open_hash_table(std::string_view spec, std::string_view name, unsigned flags) {
    return open_berkeley(spec, name, flags, DB_HASH);
}

TableResult open_btree_table(std::string_view spec, std::string_view name, unsigned flags) {
    return open_berkeley(spec, name, flags, DB_BTREE);
}

}  // namespace postern::table
