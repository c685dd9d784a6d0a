// Baseline for the transport benchmark: a C++ async (completion-queue) gRPC server from Debian's
// libgrpc++ serving grpc.health.v1.Health/Check, the same method tradewinkd serves, so the two
// can be loaded by the same h2load command.
//
// Design: the classic async pattern. One completion queue and N threads polling it (default 1,
// like TW_WORKERS=1); a fixed pool of call slots, each re-armed with RequestCheck as soon as its
// reply is sent, so an arriving call never waits for a slot. The server counts replies it sent
// with status OK and prints them as one JSON line at shutdown, which lets the benchmark check
// that h2load's "succeeded" (HTTP 200) really were gRPC successes.
//
// Usage: bench_cpp_health [ADDR=127.0.0.1:0] [THREADS=1]
// Prints {"event":"listening","port":N} to stderr; SIGTERM/SIGINT stop it and print
// {"event":"stopped","ok_calls":N,"other_calls":M}.
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

namespace {

std::atomic<unsigned long> ok_calls{0};
std::atomic<unsigned long> other_calls{0};
constexpr int kSlotsPerThread = 64;

class Slot {
  public:
    Slot(Health::AsyncService *svc, grpc::ServerCompletionQueue *cq)
        : svc_(svc), cq_(cq), writer_(&ctx_)
    {
        Arm();
    }

    // Called when this slot's tag completes.
    void Proceed(bool ok)
    {
        if (state_ == kWaiting) {
            if (!ok) { // server shutting down
                delete this;
                return;
            }
            HealthCheckResponse resp;
            grpc::Status st = grpc::Status::OK;
            if (req_.service().empty())
                resp.set_status(HealthCheckResponse::SERVING);
            else
                st = grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
            state_ = kReplying;
            sent_ok_ = st.ok();
            if (st.ok())
                writer_.Finish(resp, st, this);
            else
                writer_.FinishWithError(st, this);
            return;
        }
        // kReplying done: count, recycle
        if (ok && sent_ok_)
            ok_calls.fetch_add(1, std::memory_order_relaxed);
        else
            other_calls.fetch_add(1, std::memory_order_relaxed);
        Reset();
    }

  private:
    enum State { kWaiting, kReplying };

    void Arm()
    {
        state_ = kWaiting;
        svc_->RequestCheck(&ctx_, &req_, &writer_, cq_, cq_, this);
    }

    void Reset()
    {
        // ServerContext and the responder cannot be reused: rebuild them in place.
        ctx_.~ServerContext();
        new (&ctx_) grpc::ServerContext();
        writer_.~ServerAsyncResponseWriter<HealthCheckResponse>();
        new (&writer_) grpc::ServerAsyncResponseWriter<HealthCheckResponse>(&ctx_);
        req_.Clear();
        Arm();
    }

    Health::AsyncService *svc_;
    grpc::ServerCompletionQueue *cq_;
    grpc::ServerContext ctx_;
    HealthCheckRequest req_;
    grpc::ServerAsyncResponseWriter<HealthCheckResponse> writer_;
    State state_ = kWaiting;
    bool sent_ok_ = false;
};

void Poll(grpc::ServerCompletionQueue *cq)
{
    void *tag;
    bool ok;
    while (cq->Next(&tag, &ok))
        static_cast<Slot *>(tag)->Proceed(ok);
}

} // namespace

int main(int argc, char **argv)
{
    std::string addr = argc > 1 ? argv[1] : "127.0.0.1:0";
    int threads = argc > 2 ? std::max(1, static_cast<int>(std::strtol(argv[2], nullptr, 10))) : 1;

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    Health::AsyncService service;
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), &port);
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.RegisterService(&service);
    std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server || port == 0) {
        std::fprintf(stderr, "{\"event\":\"error\",\"msg\":\"cannot listen on %s\"}\n",
                     addr.c_str());
        return 1;
    }
    for (int i = 0; i < kSlotsPerThread * threads; i++)
        new Slot(&service, cq.get());
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; i++)
        pool.emplace_back(Poll, cq.get());
    std::fprintf(stderr, "{\"event\":\"listening\",\"port\":%d,\"threads\":%d}\n", port, threads);
    std::fflush(stderr);

    int sig = 0;
    sigwait(&sigs, &sig);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    cq->Shutdown();
    for (auto &t : pool)
        t.join();
    std::fprintf(stderr, "{\"event\":\"stopped\",\"ok_calls\":%lu,\"other_calls\":%lu}\n",
                 ok_calls.load(), other_calls.load());
    return 0;
}
