#!/usr/bin/env escript
%%! +P 4000000
%% The clustertop-bench scenarios on the BEAM, for side-by-side figures
%% (`clustertop-bench compare` runs it beside the Rust runtimes).
%%
%%   escript bench/peers/beam.escript all [--quick]
%%   escript bench/peers/beam.escript SCENARIO [--quick]
%%
%% SCENARIO: local-oneway, ring, call-rtt, spawn, idle-memory, and between
%% two nodes (a second VM, `serve`, on 127.0.0.1 with a cookie; epmd is
%% started when not running): remote-oneway, remote-bulk, remote-call-rtt.
%%
%% Prints one JSON object per result, as `clustertop-bench --json` does,
%% with "runtime":"beam". Run each scenario in a fresh VM (`all` does).
%% The VM runs with its default scheduler settings (busy-wait included);
%% only the process limit is raised, for a million processes.
-mode(compile).
-behaviour(gen_server).
-export([init/1, handle_call/3, handle_cast/2]).

-define(COOKIE, 'clustertop-bench').

main(["all" | Rest]) ->
    Self = escript:script_name(),
    lists:foreach(
      fun(S) ->
              io:put_chars(os:cmd("escript " ++ Self ++ " " ++ S ++ " " ++ string:join(Rest, " ")))
      end,
      ["local-oneway", "ring", "call-rtt", "spawn", "idle-memory",
       "remote-oneway", "remote-bulk", "remote-call-rtt"]);
main(["serve", Name]) ->
    serve(list_to_atom(Name));
main([Scenario | Rest]) ->
    Quick = lists:member("--quick", Rest),
    run(Scenario, Quick);
main(_) ->
    io:format("usage: beam.escript <scenario|all> [--quick]~n"),
    halt(2).

report(Scenario, Fields) ->
    Body = [io_lib:format(",\"~s\":~p", [K, V]) || {K, V} <- Fields],
    io:format("{\"scenario\":\"~s\",\"runtime\":\"beam\"~s}~n", [Scenario, Body]).

now_ns() -> erlang:monotonic_time(nanosecond).

%% 1 sender -> 1 receiver, N small messages.
run("local-oneway", Quick) ->
    N = case Quick of true -> 1000000; false -> 10000000 end,
    Parent = self(),
    Receiver = spawn(fun() -> receive_n(N, 0, Parent) end),
    T0 = now_ns(),
    spawn(fun() -> send_n(Receiver, 0, N) end),
    receive {done, _Sum} -> ok end,
    Secs = (now_ns() - T0) / 1.0e9,
    report("local-oneway", [{messages, N}, {msgs_per_s, round(N / Secs)}, {seconds, Secs}]);

%% A token around a ring of processes.
run("ring", Quick) ->
    Shapes = case Quick of true -> [{1000, 100}, {100000, 1}]; false -> [{1000, 1000}, {100000, 10}] end,
    lists:foreach(
      fun({Size, Laps}) ->
              Hops = Size * Laps,
              Parent = self(),
              First = make_ring(Size, Parent),
              T0 = now_ns(),
              First ! {token, Hops},
              receive ring_done -> ok end,
              Ns = (now_ns() - T0) / Hops,
              report("ring", [{processes, Size}, {laps, Laps}, {ns_per_hop, round(Ns * 10) / 10}])
      end, Shapes);

%% Sequential gen_server:call/2 round trips to a local gen_server.
run("call-rtt", Quick) ->
    N = case Quick of true -> 20000; false -> 200000 end,
    {ok, Server} = gen_server:start(?MODULE, [], []),
    report_rtt("call-rtt", N, time_calls(Server, N));

%% Spawn and exit of many processes, from one process.
run("spawn", Quick) ->
    N = case Quick of true -> 100000; false -> 1000000 end,
    Parent = self(),
    T0 = now_ns(),
    spawn(fun() -> spawn_n(N, Parent) end),
    wait_exits(N),
    Secs = (now_ns() - T0) / 1.0e9,
    report("spawn", [{processes, N}, {spawns_per_s, round(N / Secs)}, {seconds, Secs}]);

%% Memory per idle process waiting in receive.
run("idle-memory", Quick) ->
    N = case Quick of true -> 100000; false -> 1000000 end,
    erlang:garbage_collect(),
    Before = erlang:memory(total),
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, N)],
    After = erlang:memory(total),
    ListBytes = N * 2 * erlang:system_info(wordsize),
    report("idle-memory", [{processes, N}, {bytes_per_process, round((After - Before - ListBytes) / N)}]),
    [P ! stop || P <- Pids],
    ok;
%% 16-byte messages to a process on the second node, from 1 and from 4
%% senders, at most 200,000 unacknowledged.
run("remote-oneway", Quick) ->
    Total = case Quick of true -> 200000; false -> 3000000 end,
    Node = remote_node(),
    lists:foreach(
      fun(Senders) ->
              Secs = pump(Node, Senders, Total, 10000, 200000, {small, <<7:128>>}),
              report("remote-oneway", [{senders, Senders}, {messages, Total}, {payload_bytes, 16},
                                       {msgs_per_s, round(Total / Secs)}, {seconds, Secs}])
      end, [1, 4]);

%% 1 MiB binaries to the second node, at most 64 unacknowledged.
run("remote-bulk", Quick) ->
    Total = case Quick of true -> 200; false -> 2000 end,
    Node = remote_node(),
    Secs = pump(Node, 1, Total, 8, 64, {bulk, binary:copy(<<42>>, 1 bsl 20)}),
    report("remote-bulk", [{messages, Total}, {payload_bytes, 1 bsl 20},
                           {mb_per_s, round(Total * 1.048576 / Secs * 10) / 10}, {seconds, Secs}]);

%% Sequential gen_server:call/2 round trips to the second node.
run("remote-call-rtt", Quick) ->
    N = case Quick of true -> 5000; false -> 50000 end,
    Node = remote_node(),
    report_rtt("remote-call-rtt", N, time_calls({echo, Node}, N));
run(Other, _) ->
    io:format(standard_error, "unknown scenario ~s~n", [Other]),
    halt(2).

%% The echo gen_server.
init([]) -> {ok, nostate}.
handle_call(V, _From, S) -> {reply, V, S}.
handle_cast(_, S) -> {noreply, S}.

time_calls(Server, N) ->
    [V = gen_server:call(Server, V) || V <- lists:seq(1, N div 10)],
    [begin T = now_ns(), V = gen_server:call(Server, V), now_ns() - T end || V <- lists:seq(1, N)].

report_rtt(Scenario, N, Samples) ->
    Sorted = list_to_tuple(lists:sort(Samples)),
    Q = fun(P) -> element(max(1, round(P * N)), Sorted) / 1000 end,
    report(Scenario, [{calls, N}, {p99_us, Q(0.99)}, {p50_us, Q(0.5)}, {p999_us, Q(0.999)},
                      {max_us, element(N, Sorted) / 1000}]).

%% Starts this VM's distribution and a second VM (`serve`), connected;
%% returns the second node's name. The second VM ends with this one.
remote_node() ->
    _ = os:cmd("epmd -daemon"),
    Id = os:getpid(),
    {ok, _} = net_kernel:start(list_to_atom("bench_client_" ++ Id ++ "@127.0.0.1"),
                               #{name_domain => longnames}),
    erlang:set_cookie(?COOKIE),
    Server = "bench_server_" ++ Id ++ "@127.0.0.1",
    Port = open_port({spawn_executable, os:find_executable("escript")},
                     [{args, [escript:script_name(), "serve", Server]},
                      {line, 256}, use_stdio, exit_status]),
    receive
        {Port, {data, {eol, "ready"}}} -> ok;
        {Port, {exit_status, S}} -> error({server_exited, S})
    after 30000 -> error(server_timeout)
    end,
    Node = list_to_atom(Server),
    true = net_kernel:connect_node(Node),
    Node.

%% The second node: a sink that acks every batch, and the echo
%% gen_server, registered; ends when its standard input closes.
serve(Name) ->
    {ok, _} = net_kernel:start(Name, #{name_domain => longnames}),
    erlang:set_cookie(?COOKIE),
    register(sink, spawn(fun() -> sink(none, 0, 0) end)),
    {ok, _} = gen_server:start({local, echo}, ?MODULE, [], []),
    io:format("ready~n"),
    eof = io:get_line(""),
    halt(0).

sink(To, Batch, N) ->
    receive
        {start, T, B} -> sink(T, B, 0);
        {_, _Payload} ->
            N1 = N + 1,
            case N1 rem Batch of
                0 -> To ! {acked, N1};
                _ -> ok
            end,
            sink(To, Batch, N1)
    end.

%% `Senders` processes send `Total` copies of `Msg` to the sink, keeping
%% at most `Window` unacknowledged; returns the seconds until all are
%% acknowledged.
pump(Node, Senders, Total, Batch, Window, Msg) ->
    Parent = self(),
    Acked = atomics:new(1, []),
    Sent = atomics:new(1, []),
    Acker = spawn(fun() -> acker(Acked, Total, Parent) end),
    {sink, Node} ! {start, Acker, Batch},
    T0 = now_ns(),
    [spawn(fun() -> send_loop({sink, Node}, Msg, Sent, Acked, Total, Window) end)
     || _ <- lists:seq(1, Senders)],
    receive all_acked -> ok end,
    (now_ns() - T0) / 1.0e9.

acker(Acked, Total, Parent) ->
    receive
        {acked, N} ->
            atomics:put(Acked, 1, N),
            case N >= Total of
                true -> Parent ! all_acked;
                false -> acker(Acked, Total, Parent)
            end
    end.

send_loop(To, Msg, Sent, Acked, Total, Window) ->
    N = atomics:add_get(Sent, 1, 1) - 1,
    case N >= Total of
        true -> ok;
        false ->
            wait_window(N, Acked, Window),
            To ! Msg,
            send_loop(To, Msg, Sent, Acked, Total, Window)
    end.

wait_window(N, Acked, Window) ->
    case N >= atomics:get(Acked, 1) + Window of
        true -> erlang:yield(), wait_window(N, Acked, Window);
        false -> ok
    end.

receive_n(0, Sum, Parent) -> Parent ! {done, Sum};
receive_n(N, Sum, Parent) -> receive V -> receive_n(N - 1, Sum + V, Parent) end.

send_n(_, N, N) -> ok;
send_n(To, I, N) -> To ! I, send_n(To, I + 1, N).

make_ring(Size, Parent) ->
    Pids = [spawn(fun() -> ring_node(undefined, Parent) end) || _ <- lists:seq(1, Size)],
    Next = tl(Pids) ++ [hd(Pids)],
    [P ! {next, Nx} || {P, Nx} <- lists:zip(Pids, Next)],
    hd(Pids).

ring_node(Next, Parent) ->
    receive
        {next, N} -> ring_node(N, Parent);
        {token, 0} -> Parent ! ring_done;
        {token, H} -> Next ! {token, H - 1}, ring_node(Next, Parent)
    end.

spawn_n(0, _) -> ok;
spawn_n(N, Parent) -> spawn(fun() -> Parent ! exited end), spawn_n(N - 1, Parent).

wait_exits(0) -> ok;
wait_exits(N) -> receive exited -> wait_exits(N - 1) end.
