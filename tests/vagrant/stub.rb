# Evaluates a Vagrantfile without Vagrant, for tests/it/vagrantfile.rs: a stand-in `Vagrant`
# module records what the file configures and prints it as JSON.
#
#   ruby tests/vagrant/stub.rb PATH/Vagrantfile [vagrant command and arguments…]
#
# The Vagrantfile sees the command in ARGV, as under `vagrant`.
require "json"

module Vagrant
  # Any chain of calls on `config`: `x.y = v` is recorded under "x.y", `define`, `provider`
  # and `provision` as Vagrant would treat them.
  class Recorder
    def initialize(rec, path)
      @rec = rec
      @path = path
    end

    def method_missing(m, *args, **kw, &blk)
      name = m.to_s
      if name.end_with?("=")
        @rec["settings"][(@path + [name.chomp("=")]).join(".")] = args[0]
        return args[0]
      end
      case name
      when "define"
        @rec["defines"] << args[0]
        blk&.call(Recorder.new(@rec, ["machine", args[0]]))
        nil
      when "provider"
        blk&.call(Recorder.new(@rec, @path + ["provider", args[0]]))
        nil
      when "provision"
        @rec["provisions"] << { "where" => @path.join("."), "name" => args[0], "opts" => kw }
        nil
      when "network", "synced_folder"
        @rec["settings"][(@path + [name]).join(".")] = args + [kw]
        nil
      else
        Recorder.new(@rec, @path + [name])
      end
    end

    def respond_to_missing?(*) = true
  end

  def self.configure(_version)
    rec = { "defines" => [], "provisions" => [], "settings" => {} }
    yield Recorder.new(rec, [])
    puts JSON.generate(rec)
  end
end

file = ARGV.shift or abort("usage: stub.rb VAGRANTFILE [COMMAND…]")
load File.expand_path(file)
