// The last commits of this repository, stamped with the time in two cities,
// and the weather there. Run it with:
//   isobind exec examples/repo_report.ts --config examples/isobind.json

interface CityReport {
  city: string;
  localTime: string;
  weather: string;
}

const cities: Array<[string, string]> = [
  ["Paris", "Europe/Paris"],
  ["Tokyo", "Asia/Tokyo"],
];

// Independent calls run concurrently.
const [log, ...reports] = await Promise.all([
  tools.git.git_log({ repo_path: "..", max_count: 5 }),
  ...cities.map(async ([city, zone]): Promise<CityReport> => {
    const [now, forecast] = await Promise.all([
      tools.time.get_current_time({ timezone: zone }),
      tools.forecast.get_forecast({ city, days: 1 }),
    ]);
    const today = forecast.result[0]!;
    return {
      city,
      localTime: now.datetime,
      weather: `${today.condition}, ${today.low_c} to ${today.high_c} °C`,
    };
  }),
]);

const text = typeof log === "string" ? log : JSON.stringify(log);
const commits = text
  .split(/\n(?=Commit: )/)
  .filter((entry) => entry.includes("Commit: "))
  .map((entry) => {
    const hash = /Commit: '?([0-9a-f]{7})/.exec(entry)?.[1] ?? "???????";
    // Some versions of mcp-server-git quote the message; an apostrophe inside it stays.
    const line = /Message: ([^\n]*)/.exec(entry)?.[1]?.trim() ?? "";
    const message = /^'.*'$/.test(line) ? line.slice(1, -1) : line;
    return `${hash} ${message}`;
  });

for (const report of reports) {
  console.log(`${report.city}: ${report.localTime} (${report.weather})`);
}
console.log(`Last ${commits.length} commits:`);
for (const commit of commits) {
  console.log(`  ${commit}`);
}
return { commits: commits.length, cities: reports.map((report) => report.city) };
