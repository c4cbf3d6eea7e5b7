%% A gen_server that handles a cast in 20 ms (50 a second), fed 500
%% casts a second by a feeder: its mailbox grows by about 450 messages a
%% second. Under a supervisor, as an application's processes are; the one
%% module is the callback module of both.
-module(slow_server).
-behaviour(gen_server).
-export([start/0, start_link/0, feeder/0]).
-export([init/1, handle_call/3, handle_cast/2]).

start() ->
    {ok, Sup} = supervisor:start_link({local, slow_sup}, ?MODULE, sup),
    unlink(Sup),
    {ok, Sup}.

start_link() ->
    gen_server:start_link({local, slow_server}, ?MODULE, server, []).

init(sup) ->
    Children = [#{id => slow_server, start => {?MODULE, start_link, []}},
                #{id => feeder, start => {proc_lib, start_link, [?MODULE, feeder, []]}}],
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, Children}};
init(server) ->
    {ok, 0}.

handle_call(count, _From, N) -> {reply, N, N}.

handle_cast(work, N) ->
    timer:sleep(20),
    {noreply, N + 1}.

feeder() ->
    proc_lib:init_ack({ok, self()}),
    feed().

feed() ->
    [gen_server:cast(slow_server, work) || _ <- lists:seq(1, 5)],
    timer:sleep(10),
    feed().
