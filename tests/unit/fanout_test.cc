// FanoutWriter: every item tried once, by the loop and the helpers, results
// exact (whole, partial, EAGAIN, errors), no SIGPIPE, and many batches in a
// row without a lost wake-up (run under ASan+UBSan too).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "proxy/fanout_writer.h"

using namespace hashgate;

namespace {

struct Pair {
  int w = -1, r = -1;
  Pair() {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    w = fds[0];
    r = fds[1];
    fcntl(r, F_SETFL, fcntl(r, F_GETFL) | O_NONBLOCK);
  }
  ~Pair() {
    if (w >= 0) close(w);
    if (r >= 0) close(r);
  }
  std::string drain() const {
    std::string got;
    char buf[65536];
    for (ssize_t n; (n = read(r, buf, sizeof buf)) > 0;) got.append(buf, size_t(n));
    return got;
  }
};

// Each socket gets a head that names it and the shared tail, as two iovecs.
struct Batch {
  std::vector<std::string> heads;
  std::string tail;
  std::vector<FanoutWriter::Item> items;
  std::vector<iovec> iovs;
  Batch(const std::vector<Pair>& ps, int round) : tail("|shared tail " + std::to_string(round) + "\n") {
    heads.reserve(ps.size());
    for (size_t i = 0; i < ps.size(); ++i) heads.push_back("socket " + std::to_string(i) + " round " + std::to_string(round));
    for (size_t i = 0; i < ps.size(); ++i) {
      items.push_back(FanoutWriter::Item{ps[i].w, uint32_t(iovs.size()), 2, -1});
      iovs.push_back(iovec{heads[i].data(), heads[i].size()});
      iovs.push_back(iovec{tail.data(), tail.size()});
    }
  }
  size_t size_of(size_t i) const { return heads[i].size() + tail.size(); }
};

}  // namespace

TEST_CASE("fanout: every socket gets exactly its bytes, with and without helpers") {
  for (unsigned helpers : {0u, 1u, 3u}) {
    CAPTURE(helpers);
    FanoutWriter fw(helpers);
    CHECK(fw.helpers() == helpers);
    std::vector<Pair> ps(300);
    std::vector<std::string> want(ps.size());
    for (int round = 0; round < 3; ++round) {
      Batch b(ps, round);
      fw.run(b.items, b.iovs, 256);
      for (size_t i = 0; i < ps.size(); ++i) {
        REQUIRE(b.items[i].result == int64_t(b.size_of(i)));
        want[i] += b.heads[i] + b.tail;
      }
    }
    for (size_t i = 0; i < ps.size(); ++i) CHECK(ps[i].drain() == want[i]);
    CHECK(fw.parallel_runs() == (helpers ? 3u : 0u));
    // Each item claimed once: the two sides' counts add up to the whole,
    // and every helper took part in every parallel batch.
    CHECK(fw.items_by_helpers() + fw.items_by_caller() == 3 * ps.size());
    CHECK(fw.helper_passes() == 3u * helpers);
    if (!helpers) CHECK(fw.items_by_helpers() == 0);
  }
}

TEST_CASE("fanout: a batch under the threshold stays on the caller") {
  FanoutWriter fw(2);
  std::vector<Pair> ps(10);
  Batch b(ps, 0);
  fw.run(b.items, b.iovs, 256);
  CHECK(fw.parallel_runs() == 0);
  CHECK(fw.items_by_helpers() == 0);
  CHECK(fw.items_by_caller() == ps.size());
  CHECK(fw.helper_passes() == 0);
  for (size_t i = 0; i < ps.size(); ++i) CHECK(ps[i].drain() == b.heads[i] + b.tail);
}

TEST_CASE("fanout: a full socket reports a partial write, then 0; a closed peer an error, not SIGPIPE") {
  FanoutWriter fw(1);
  std::vector<Pair> ps(300);
  int sndbuf = 4096;
  REQUIRE(setsockopt(ps[7].w, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) == 0);
  close(ps[9].r);
  ps[9].r = -1;
  std::string big(1 << 20, 'x');
  std::vector<FanoutWriter::Item> items;
  std::vector<iovec> iovs;
  std::string small = "hello\n";
  for (size_t i = 0; i < ps.size(); ++i) {
    items.push_back(FanoutWriter::Item{ps[i].w, uint32_t(iovs.size()), 1, -1});
    iovs.push_back(i == 7 ? iovec{big.data(), big.size()} : iovec{small.data(), small.size()});
  }
  fw.run(items, iovs, 256);
  CHECK(items[7].result > 0);
  CHECK(items[7].result < int64_t(big.size()));
  CHECK(items[9].result == -EPIPE);
  CHECK(items[0].result == int64_t(small.size()));
  CHECK(items[299].result == int64_t(small.size()));
  // Nothing read yet: the same socket takes nothing more.
  iovs[7] = iovec{big.data(), big.size()};
  fw.run(items, iovs, 256);
  CHECK(items[7].result == 0);
}

TEST_CASE("fanout: a thousand batches in a row, helpers never lost") {
  FanoutWriter fw(2);
  std::vector<Pair> ps(260);
  std::string line = "job\n";
  std::vector<FanoutWriter::Item> items;
  std::vector<iovec> iovs;
  for (size_t i = 0; i < ps.size(); ++i) {
    items.push_back(FanoutWriter::Item{ps[i].w, uint32_t(i), 1, -1});
    iovs.push_back(iovec{line.data(), line.size()});
  }
  size_t total = 0;
  for (int round = 0; round < 1000; ++round) {
    fw.run(items, iovs, 256);
    for (auto& it : items) {
      REQUIRE(it.result == int64_t(line.size()));
      it.result = -1;
    }
    if (round % 100 == 99)
      for (auto& p : ps) total += p.drain().size();
  }
  CHECK(total == 1000 * ps.size() * line.size());
  CHECK(fw.parallel_runs() == 1000);
}
